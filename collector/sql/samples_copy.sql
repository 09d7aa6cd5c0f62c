-- Fast path for new samples: straight into the table. A sample already stored makes it
-- fail whole (unique violation), and the batch is written through samples_incoming.
COPY samples (
    link_id, probe_id, observed_at, outcome,
    rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error, metrics
) FROM STDIN (FORMAT BINARY)
