-- For each requested probe, its stored intervals overlapping [from, to) (to NULL:
-- unbounded), unclipped, oldest first. The first is the last one starting at or before
-- `from`, so the scan is a range of the primary key, whatever the probe's history.
SELECT p.ord, s.status, s.starts_at, s.ends_at, s.error
FROM unnest(
    %(link_ids)s::text[], %(probe_ids)s::text[], %(from)s::timestamptz[], %(to)s::timestamptz[]
) WITH ORDINALITY AS p (link_id, probe_id, from_, to_, ord)
JOIN probe_states AS s
  ON s.link_id = p.link_id
 AND s.probe_id = p.probe_id
 AND s.starts_at >= COALESCE(
         (SELECT max(b.starts_at) FROM probe_states AS b
          WHERE b.link_id = p.link_id AND b.probe_id = p.probe_id AND b.starts_at <= p.from_),
         '-infinity')
 AND (s.ends_at IS NULL OR s.ends_at > p.from_)
 AND s.starts_at < COALESCE(p.to_, 'infinity')  -- a bound of the index scan, as an OR is not
ORDER BY p.ord, s.starts_at
