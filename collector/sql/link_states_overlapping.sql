-- The stored intervals of these links overlapping [start, end), unclipped, in order.
-- The first is the last one starting at or before `start`, so each link's scan is a
-- range of the primary key, whatever its history.
SELECT u.link_id, s.status, s.starts_at, s.ends_at
FROM unnest(%(link_ids)s::text[]) WITH ORDINALITY AS u (link_id, ord)
JOIN link_states AS s
  ON s.link_id = u.link_id
 AND s.starts_at >= COALESCE(
         (SELECT max(b.starts_at) FROM link_states AS b
          WHERE b.link_id = u.link_id AND b.starts_at <= %(start)s),
         '-infinity')
 AND s.starts_at < %(end)s
 AND (s.ends_at IS NULL OR s.ends_at > %(start)s)
ORDER BY u.ord, s.starts_at
