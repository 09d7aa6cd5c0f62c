-- When each link's monitoring began: the start of its first stored state interval (the
-- intervals tile time from a link's first sample on). One step into link_states' primary
-- key per link, however long its history.
SELECT l.link_id, f.starts_at
FROM unnest(%(link_ids)s::text[]) AS l (link_id)
CROSS JOIN LATERAL (
    SELECT s.starts_at
    FROM link_states AS s
    WHERE s.link_id = l.link_id
    ORDER BY s.starts_at
    LIMIT 1
) AS f
