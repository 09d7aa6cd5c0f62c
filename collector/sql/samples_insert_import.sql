-- Stores each sample of the file once: samples stored already, and the file's repeats of
-- a sample (with the same values: other values were refused), are skipped. The row count
-- is the number newly stored. In key order, the primary key's index is filled page by
-- page rather than at random.
INSERT INTO samples (
    link_id, probe_id, observed_at, outcome,
    rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error
)
SELECT link_id, probe_id, observed_at, outcome,
       rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error
FROM samples_import
ORDER BY link_id, probe_id, observed_at
ON CONFLICT DO NOTHING
