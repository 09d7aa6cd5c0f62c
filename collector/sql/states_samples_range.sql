-- For each requested probe, its samples in [from, to] (to NULL: to the newest), oldest
-- first. Only what status derivation needs is read.
SELECT p.ord, s.observed_at, s.outcome, s.error
FROM unnest(
    %(link_ids)s::text[], %(probe_ids)s::text[], %(from)s::timestamptz[], %(to)s::timestamptz[]
) WITH ORDINALITY AS p (link_id, probe_id, from_, to_, ord)
CROSS JOIN LATERAL (
    SELECT observed_at, outcome, error
    FROM samples
    WHERE samples.link_id = p.link_id
      AND samples.probe_id = p.probe_id
      AND samples.observed_at >= p.from_
      -- A bound of the index scan (an OR is not: the scan would run to the newest sample).
      AND samples.observed_at <= COALESCE(p.to_, 'infinity')
    ORDER BY samples.observed_at
) AS s
ORDER BY p.ord, s.observed_at
