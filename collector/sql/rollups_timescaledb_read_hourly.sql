SELECT link_id, probe_id, bucket_start,
       samples_up, samples_degraded, samples_down, samples_unknown,
       rtt_mean_ms, rtt_p95_ms, loss_mean_pct, jitter_mean_ms
FROM samples_hourly
WHERE link_id = ANY(%(link_ids)s::text[])
  AND bucket_start >= %(start)s
  AND bucket_start < %(end)s
ORDER BY link_id, probe_id, bucket_start
