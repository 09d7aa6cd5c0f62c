INSERT INTO probe_states (link_id, probe_id, status, starts_at, ends_at, error)
SELECT *
FROM unnest(
    %(link_ids)s::text[], %(probe_ids)s::text[], %(statuses)s::text[],
    %(starts_at)s::timestamptz[], %(ends_at)s::timestamptz[], %(errors)s::text[]
)
