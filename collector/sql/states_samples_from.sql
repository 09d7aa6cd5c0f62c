-- For each requested probe, its oldest samples at or after a time, oldest first.
SELECT p.ord, s.observed_at, s.outcome, s.error
FROM unnest(
    %(link_ids)s::text[], %(probe_ids)s::text[], %(from)s::timestamptz[], %(limits)s::int[]
) WITH ORDINALITY AS p (link_id, probe_id, from_, max_samples, ord)
CROSS JOIN LATERAL (
    SELECT observed_at, outcome, error
    FROM samples
    WHERE samples.link_id = p.link_id
      AND samples.probe_id = p.probe_id
      AND samples.observed_at >= p.from_
    ORDER BY samples.observed_at
    LIMIT p.max_samples
) AS s
ORDER BY p.ord, s.observed_at
