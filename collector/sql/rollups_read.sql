-- Rollups of one bucket width for some links, for buckets starting in [start, end)
-- (bucket-aligned by the caller). Buckets before the watermark come from the rollups
-- table; later ones are aggregated from raw samples now, as TimescaleDB's real-time
-- continuous aggregates do. The watermark is read once (an InitPlan), so both halves
-- agree on it, and it bounds the raw scan through the primary key.
-- The aggregates must stay identical to rollups_refresh.sql.
SELECT link_id, probe_id, bucket_start,
       samples_up, samples_degraded, samples_down, samples_unknown,
       rtt_mean_ms, rtt_p95_ms, loss_mean_pct, jitter_mean_ms
FROM rollups
WHERE bucket = %(bucket)s
  AND link_id = ANY(%(link_ids)s::text[])
  AND bucket_start >= %(start)s
  AND bucket_start < least(%(end)s, (
      SELECT coalesce(max(materialized_until), '-infinity')
      FROM rollup_watermarks WHERE bucket = %(bucket)s
  ))
UNION ALL
SELECT
    link_id, probe_id, date_bin(%(width)s, observed_at, %(origin)s),
    count(*) FILTER (WHERE outcome = 'up'),
    count(*) FILTER (WHERE outcome = 'degraded'),
    count(*) FILTER (WHERE outcome = 'down'),
    count(*) FILTER (WHERE outcome = 'unknown'),
    avg(rtt_ms),
    percentile_cont(0.95) WITHIN GROUP (ORDER BY rtt_ms),
    avg(loss_pct),
    avg(jitter_ms)
FROM samples
WHERE link_id = ANY(%(link_ids)s::text[])
  AND observed_at >= greatest(%(start)s, (
      SELECT coalesce(max(materialized_until), '-infinity')
      FROM rollup_watermarks WHERE bucket = %(bucket)s
  ))
  AND observed_at < %(end)s
GROUP BY 1, 2, 3
ORDER BY link_id, probe_id, bucket_start
