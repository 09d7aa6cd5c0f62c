-- For each requested probe, its newest samples before a time, newest first: a backward
-- scan of the samples primary key that stops at the limit.
SELECT p.ord, s.observed_at, s.outcome, s.error
FROM unnest(
    %(link_ids)s::text[], %(probe_ids)s::text[], %(before)s::timestamptz[], %(limits)s::int[]
) WITH ORDINALITY AS p (link_id, probe_id, before, max_samples, ord)
CROSS JOIN LATERAL (
    SELECT observed_at, outcome, error
    FROM samples
    WHERE samples.link_id = p.link_id
      AND samples.probe_id = p.probe_id
      AND samples.observed_at < p.before
    ORDER BY samples.observed_at DESC
    LIMIT p.max_samples
) AS s
ORDER BY p.ord, s.observed_at DESC
