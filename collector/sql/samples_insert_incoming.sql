-- Stores each sample once: already stored samples, and repeats within the batch (the
-- first one copied wins), are skipped. The row count is the number newly stored.
INSERT INTO samples (
    link_id, probe_id, observed_at, outcome,
    rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error, metrics
)
SELECT link_id, probe_id, observed_at, outcome,
       rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error, metrics
FROM samples_incoming
ON CONFLICT DO NOTHING
