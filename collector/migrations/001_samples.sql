-- Raw probe samples. A sample's identity is (link_id, probe_id, observed_at): writing
-- the same sample twice stores it once. The primary key also serves "latest samples of a
-- probe" (a backward index scan), which the current-status query relies on.
-- TimescaleDB, when present, turns this table into a hypertable afterwards (migrate.py).
CREATE TABLE samples (
    link_id     text             NOT NULL,
    probe_id    text             NOT NULL,
    observed_at timestamptz      NOT NULL,
    outcome     text             NOT NULL
        CHECK (outcome IN ('up', 'degraded', 'down', 'unknown')),
    rtt_ms      double precision NULL,
    rtt_min_ms  double precision NULL,
    rtt_max_ms  double precision NULL,
    jitter_ms   double precision NULL,
    loss_pct    double precision NULL,
    error       text             NULL,
    PRIMARY KEY (link_id, probe_id, observed_at)
);
