DELETE FROM probe_states AS s
USING unnest(
    %(link_ids)s::text[], %(probe_ids)s::text[], %(starts_at)s::timestamptz[]
) AS d (link_id, probe_id, starts_at)
WHERE s.link_id = d.link_id AND s.probe_id = d.probe_id AND s.starts_at = d.starts_at
