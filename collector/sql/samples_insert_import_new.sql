-- Stores the file's samples where none of them is stored already and none repeats: the
-- common case, without ON CONFLICT's per-row check. Any repeat is a unique violation,
-- and the caller takes the way of samples_insert_import.sql instead. In key order, the
-- primary key's index is filled page by page rather than at random.
INSERT INTO samples (
    link_id, probe_id, observed_at, outcome,
    rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error
)
SELECT link_id, probe_id, observed_at, outcome,
       rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error
FROM samples_import
ORDER BY link_id, probe_id, observed_at
