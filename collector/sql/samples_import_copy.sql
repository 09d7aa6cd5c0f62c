COPY samples_import (
    link_id, probe_id, observed_at, outcome,
    rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error, line
) FROM STDIN
