-- For each requested probe: its stored interval at a time, if any, and the newest sample
-- its stored intervals include. The interval is the last one starting at or before the
-- time (one backward step on the primary key), if it has not ended by then.
SELECT p.ord, s.status, s.starts_at, g.derived_through
FROM unnest(%(link_ids)s::text[], %(probe_ids)s::text[]) WITH ORDINALITY AS p (link_id, probe_id, ord)
LEFT JOIN LATERAL (
    SELECT status, starts_at, ends_at
    FROM probe_states
    WHERE probe_states.link_id = p.link_id
      AND probe_states.probe_id = p.probe_id
      AND probe_states.starts_at <= %(at)s
    ORDER BY probe_states.starts_at DESC
    LIMIT 1
) AS s ON s.ends_at IS NULL OR s.ends_at > %(at)s
LEFT JOIN state_progress AS g ON g.link_id = p.link_id AND g.probe_id = p.probe_id
ORDER BY p.ord
