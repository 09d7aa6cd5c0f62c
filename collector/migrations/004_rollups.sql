-- Hourly and daily rollups of samples per link and probe, for plain PostgreSQL.
-- collector/rollups.py maintains them: complete buckets are materialized here up to a
-- watermark per bucket width, buckets at or after it are aggregated from raw samples when
-- read. On TimescaleDB the continuous aggregates samples_hourly and samples_daily
-- (created by migrate.py) take their place and these tables stay empty.
-- Every statement is re-runnable.

CREATE TABLE IF NOT EXISTS rollups (
    bucket         text             NOT NULL CHECK (bucket IN ('hour', 'day')),
    link_id        text             NOT NULL,
    probe_id       text             NOT NULL,
    bucket_start   timestamptz      NOT NULL,
    samples_up       bigint         NOT NULL,
    samples_degraded bigint         NOT NULL,
    samples_down     bigint         NOT NULL,
    samples_unknown  bigint         NOT NULL,
    rtt_mean_ms    double precision NULL,
    rtt_p95_ms     double precision NULL,
    loss_mean_pct  double precision NULL,
    jitter_mean_ms double precision NULL,
    PRIMARY KEY (bucket, link_id, probe_id, bucket_start)
);

-- Serves rollup retention (oldest buckets first); reads go through the primary key.
CREATE INDEX IF NOT EXISTS rollups_bucket_start_idx ON rollups (bucket_start);

-- Buckets of a width that start before materialized_until are in `rollups`; later ones
-- are computed from samples at read time. No row: nothing materialized yet.
-- claimed_until runs ahead while buckets up to it are being materialized: a refresh for
-- samples from there on has nothing to wait for (see collector/rollups.py).
CREATE TABLE IF NOT EXISTS rollup_watermarks (
    bucket             text        PRIMARY KEY CHECK (bucket IN ('hour', 'day')),
    materialized_until timestamptz NOT NULL,
    claimed_until      timestamptz NOT NULL,
    CHECK (claimed_until >= materialized_until)
);

-- Serves sample retention and rollup materialization, which both scan a time range over
-- every link. The name is TimescaleDB's default time index: on a database that is a
-- hypertable already, that index exists and this statement does nothing; on a fresh one
-- create_hypertable finds this index and adds none of its own.
CREATE INDEX IF NOT EXISTS samples_observed_at_idx ON samples (observed_at);
