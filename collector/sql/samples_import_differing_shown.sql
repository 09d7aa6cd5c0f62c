-- The first %(limit)s differing samples in file order: line, key, the file's values,
-- then the stored ones (in the order of collector.importer.COMPARED) and metrics.
SELECT line, link_id, probe_id, observed_at,
       outcome, rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error,
       stored_outcome, stored_rtt_ms, stored_rtt_min_ms, stored_rtt_max_ms,
       stored_jitter_ms, stored_loss_pct, stored_error, stored_metrics
FROM samples_import_differing
ORDER BY line
LIMIT %(limit)s
