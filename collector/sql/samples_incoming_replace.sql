-- A correction: the staged values replace those of samples stored with other values.
-- Stored metrics stay (an imported row carries none). The row count is the number of
-- samples replaced.
UPDATE samples AS s
SET outcome = i.outcome,
    rtt_ms = i.rtt_ms,
    rtt_min_ms = i.rtt_min_ms,
    rtt_max_ms = i.rtt_max_ms,
    jitter_ms = i.jitter_ms,
    loss_pct = i.loss_pct,
    error = i.error
FROM samples_incoming AS i
WHERE s.link_id = i.link_id AND s.probe_id = i.probe_id AND s.observed_at = i.observed_at
  AND s.observed_at BETWEEN %(first)s AND %(last)s
  AND (i.outcome, i.rtt_ms, i.rtt_min_ms, i.rtt_max_ms, i.jitter_ms, i.loss_pct, i.error)
      IS DISTINCT FROM
      (s.outcome, s.rtt_ms, s.rtt_min_ms, s.rtt_max_ms, s.jitter_ms, s.loss_pct, s.error)
