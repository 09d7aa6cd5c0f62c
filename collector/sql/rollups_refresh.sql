-- Recomputes one bucket width's rollups from raw samples in [start, end) (bucket-aligned
-- by the caller), for the given links or all links when link_ids is NULL, and upserts
-- them. Buckets without samples in the range are left alone: their samples may be gone to
-- retention while the rollup stays. A bucket whose numbers did not change is not
-- rewritten, so repeated refreshes leave no dead rows. The row count is the number of
-- buckets inserted or changed.
-- The aggregates must stay identical to rollups_read.sql and the continuous aggregates
-- in rollups_timescaledb_create_*.sql (tests/test_rollups.py compares the engines).
INSERT INTO rollups AS r (
    bucket, link_id, probe_id, bucket_start,
    samples_up, samples_degraded, samples_down, samples_unknown,
    rtt_mean_ms, rtt_p95_ms, loss_mean_pct, jitter_mean_ms
)
SELECT
    %(bucket)s, link_id, probe_id, date_bin(%(width)s, observed_at, %(origin)s),
    count(*) FILTER (WHERE outcome = 'up'),
    count(*) FILTER (WHERE outcome = 'degraded'),
    count(*) FILTER (WHERE outcome = 'down'),
    count(*) FILTER (WHERE outcome = 'unknown'),
    avg(rtt_ms),
    percentile_cont(0.95) WITHIN GROUP (ORDER BY rtt_ms),
    avg(loss_pct),
    avg(jitter_ms)
FROM samples
WHERE observed_at >= %(start)s AND observed_at < %(end)s
  AND (%(link_ids)s::text[] IS NULL OR link_id = ANY(%(link_ids)s::text[]))
GROUP BY 2, 3, 4
ON CONFLICT (bucket, link_id, probe_id, bucket_start) DO UPDATE SET
    samples_up = EXCLUDED.samples_up,
    samples_degraded = EXCLUDED.samples_degraded,
    samples_down = EXCLUDED.samples_down,
    samples_unknown = EXCLUDED.samples_unknown,
    rtt_mean_ms = EXCLUDED.rtt_mean_ms,
    rtt_p95_ms = EXCLUDED.rtt_p95_ms,
    loss_mean_pct = EXCLUDED.loss_mean_pct,
    jitter_mean_ms = EXCLUDED.jitter_mean_ms
WHERE (
    r.samples_up, r.samples_degraded, r.samples_down, r.samples_unknown,
    r.rtt_mean_ms, r.rtt_p95_ms, r.loss_mean_pct, r.jitter_mean_ms
) IS DISTINCT FROM (
    EXCLUDED.samples_up, EXCLUDED.samples_degraded, EXCLUDED.samples_down,
    EXCLUDED.samples_unknown, EXCLUDED.rtt_mean_ms, EXCLUDED.rtt_p95_ms,
    EXCLUDED.loss_mean_pct, EXCLUDED.jitter_mean_ms
)
