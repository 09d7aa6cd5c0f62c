-- The samples of the file stored already with other values, each once (at its first
-- line in the file), with the stored values beside the file's. Metrics are not compared:
-- an imported row carries none. The time bounds let TimescaleDB skip the chunks the
-- file cannot touch.
CREATE TEMPORARY TABLE samples_import_differing ON COMMIT DROP AS
WITH firsts AS (
    SELECT DISTINCT ON (link_id, probe_id, observed_at) *
    FROM samples_import
    ORDER BY link_id, probe_id, observed_at, line
)
SELECT i.line, i.link_id, i.probe_id, i.observed_at,
       i.outcome, i.rtt_ms, i.rtt_min_ms, i.rtt_max_ms, i.jitter_ms, i.loss_pct, i.error,
       s.outcome AS stored_outcome, s.rtt_ms AS stored_rtt_ms,
       s.rtt_min_ms AS stored_rtt_min_ms, s.rtt_max_ms AS stored_rtt_max_ms,
       s.jitter_ms AS stored_jitter_ms, s.loss_pct AS stored_loss_pct,
       s.error AS stored_error, s.metrics AS stored_metrics
FROM firsts AS i
JOIN samples AS s
  ON s.link_id = i.link_id AND s.probe_id = i.probe_id AND s.observed_at = i.observed_at
WHERE s.observed_at BETWEEN %(first)s AND %(last)s
  AND (i.outcome, i.rtt_ms, i.rtt_min_ms, i.rtt_max_ms, i.jitter_ms, i.loss_pct, i.error)
      IS DISTINCT FROM
      (s.outcome, s.rtt_ms, s.rtt_min_ms, s.rtt_max_ms, s.jitter_ms, s.loss_pct, s.error)
