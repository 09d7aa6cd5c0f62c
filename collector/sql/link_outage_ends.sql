-- The end of each announced outage: that of the link's latest DOWN interval ending after
-- the announced start (an outage seen again after a blind spot, or moved by late
-- samples, is still the one announced). NULL where no such interval is left.
SELECT o.link_id, o.starts_at, (
    SELECT s.ends_at
    FROM link_states s
    WHERE s.link_id = o.link_id AND s.status = 'down' AND s.ends_at > o.starts_at
    ORDER BY s.starts_at DESC
    LIMIT 1
)
FROM unnest(%(link_ids)s::text[], %(starts_at)s::timestamptz[]) AS o (link_id, starts_at)
