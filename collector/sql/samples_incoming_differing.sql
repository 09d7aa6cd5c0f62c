-- Staged samples (samples_incoming) that are stored already with other values, with the
-- stored values. Metrics are not compared: an imported row carries none. The time bounds
-- let TimescaleDB skip the chunks the batch cannot touch.
SELECT s.link_id, s.probe_id, s.observed_at, s.outcome,
       s.rtt_ms, s.rtt_min_ms, s.rtt_max_ms, s.jitter_ms, s.loss_pct, s.error, s.metrics
FROM samples_incoming AS i
JOIN samples AS s
  ON s.link_id = i.link_id AND s.probe_id = i.probe_id AND s.observed_at = i.observed_at
WHERE s.observed_at BETWEEN %(first)s AND %(last)s
  AND (i.outcome, i.rtt_ms, i.rtt_min_ms, i.rtt_max_ms, i.jitter_ms, i.loss_pct, i.error)
      IS DISTINCT FROM
      (s.outcome, s.rtt_ms, s.rtt_min_ms, s.rtt_max_ms, s.jitter_ms, s.loss_pct, s.error)
ORDER BY s.link_id, s.probe_id, s.observed_at
