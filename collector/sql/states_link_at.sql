-- Each requested link's stored interval at a time (links without one are left out): the
-- last one starting at or before the time, if it has not ended by then.
SELECT u.link_id, s.status, s.starts_at
FROM unnest(%(link_ids)s::text[]) AS u (link_id)
CROSS JOIN LATERAL (
    SELECT status, starts_at, ends_at
    FROM link_states
    WHERE link_states.link_id = u.link_id AND link_states.starts_at <= %(at)s
    ORDER BY link_states.starts_at DESC
    LIMIT 1
) AS s
WHERE s.ends_at IS NULL OR s.ends_at > %(at)s
