-- The newest sample of each of some HTTP probes of one link, with its metrics (where the
-- probe keeps its phase milestones: dns_ms, connect_ms, tls_ms, redirect_ms,
-- first_byte_ms, total_ms). A backward scan of the primary key per probe, one row each.
SELECT p.probe_id, s.observed_at, s.outcome, s.error, s.metrics
FROM unnest(%(probe_ids)s::text[]) AS p (probe_id)
CROSS JOIN LATERAL (
    SELECT observed_at, outcome, error, metrics
    FROM samples
    WHERE samples.link_id = %(link_id)s
      AND samples.probe_id = p.probe_id
      AND samples.observed_at <= %(now)s
    ORDER BY samples.observed_at DESC
    LIMIT 1
) AS s
