-- Outages of these links overlapping [start, end), unclipped, oldest first.
SELECT link_id, starts_at, ends_at, seen_until, probe_ids, probe_starts, errors
FROM incidents
WHERE link_id = ANY(%(link_ids)s::text[])
  AND starts_at < %(end)s
  AND (seen_until IS NULL OR seen_until > %(start)s)
ORDER BY starts_at, link_id
