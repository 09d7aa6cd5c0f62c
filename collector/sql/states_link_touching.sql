-- For each requested link, its stored intervals that overlap or touch [from, to]
-- (to NULL: unbounded): the rows a splice over [from, to) rewrites or merges with. As in
-- states_probe_touching.sql: the last one starting before `from`, and those after it.
SELECT p.ord, s.status, s.starts_at, s.ends_at
FROM unnest(%(link_ids)s::text[], %(from)s::timestamptz[], %(to)s::timestamptz[])
     WITH ORDINALITY AS p (link_id, from_, to_, ord)
JOIN link_states AS s
  ON s.link_id = p.link_id
 AND s.starts_at >= COALESCE(
         (SELECT max(b.starts_at) FROM link_states AS b
          WHERE b.link_id = p.link_id AND b.starts_at < p.from_),
         '-infinity')
 AND s.starts_at <= COALESCE(p.to_, 'infinity')  -- a bound of the index scan, as an OR is not
ORDER BY p.ord, s.starts_at
