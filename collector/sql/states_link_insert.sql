INSERT INTO link_states (link_id, status, starts_at, ends_at)
SELECT *
FROM unnest(
    %(link_ids)s::text[], %(statuses)s::text[],
    %(starts_at)s::timestamptz[], %(ends_at)s::timestamptz[]
)
