-- Stores the file's samples. In key order, the primary key's index is filled page by page
-- rather than at random. As it is, for a file of samples none of which is stored already
-- and none repeated (the common case, without ON CONFLICT's per-row check): any repeat is
-- a unique violation. With ON_CONFLICT appended (collector.importer), samples stored
-- already and the file's repeats of a sample (with the same values: other values were
-- refused) are skipped. The row count is the number newly stored.
INSERT INTO samples (
    link_id, probe_id, observed_at, outcome,
    rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error
)
SELECT link_id, probe_id, observed_at, outcome,
       rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error
FROM samples_import
ORDER BY link_id, probe_id, observed_at
