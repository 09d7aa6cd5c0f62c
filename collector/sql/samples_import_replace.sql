-- A correction: the file's values replace those of samples stored with other values.
-- Stored metrics stay (an imported row carries none). The row count is the number of
-- samples replaced.
UPDATE samples AS s
SET outcome = d.outcome,
    rtt_ms = d.rtt_ms,
    rtt_min_ms = d.rtt_min_ms,
    rtt_max_ms = d.rtt_max_ms,
    jitter_ms = d.jitter_ms,
    loss_pct = d.loss_pct,
    error = d.error
FROM samples_import_differing AS d
WHERE s.link_id = d.link_id AND s.probe_id = d.probe_id AND s.observed_at = d.observed_at
  AND s.observed_at BETWEEN %(first)s AND %(last)s
