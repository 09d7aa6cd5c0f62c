-- The newest samples of each requested probe, oldest first within a probe. One row of the
-- unnest per probe, each with its own sample limit; the LATERAL subquery is a backward scan
-- of the primary key that stops at the limit, so old data is never read.
SELECT p.ord, s.observed_at, s.outcome, s.rtt_ms, s.loss_pct, s.error
FROM unnest(%(link_ids)s::text[], %(probe_ids)s::text[], %(limits)s::int[])
     WITH ORDINALITY AS p (link_id, probe_id, max_samples, ord)
CROSS JOIN LATERAL (
    SELECT observed_at, outcome, rtt_ms, loss_pct, error
    FROM samples
    WHERE samples.link_id = p.link_id
      AND samples.probe_id = p.probe_id
      AND samples.observed_at <= %(now)s
    ORDER BY samples.observed_at DESC
    LIMIT p.max_samples
) AS s
ORDER BY p.ord, s.observed_at
