-- The hourly rollups on TimescaleDB: a continuous aggregate computed from raw samples
-- (so its p95 is exact, never derived from another rollup). Real-time: buckets past the
-- materialized range are aggregated from samples when read, as on plain PostgreSQL.
-- WITH NO DATA keeps this inside the migration transaction; refresh policies and
-- housekeeping materialize it.
-- The aggregates must stay identical to rollups_refresh.sql and rollups_read.sql
-- (tests/test_rollups.py compares the engines).
CREATE MATERIALIZED VIEW IF NOT EXISTS samples_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT
    link_id,
    probe_id,
    time_bucket(INTERVAL '1 hour', observed_at) AS bucket_start,
    count(*) FILTER (WHERE outcome = 'up') AS samples_up,
    count(*) FILTER (WHERE outcome = 'degraded') AS samples_degraded,
    count(*) FILTER (WHERE outcome = 'down') AS samples_down,
    count(*) FILTER (WHERE outcome = 'unknown') AS samples_unknown,
    avg(rtt_ms) AS rtt_mean_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY rtt_ms) AS rtt_p95_ms,
    avg(loss_pct) AS loss_mean_pct,
    avg(jitter_ms) AS jitter_mean_ms
FROM samples
GROUP BY link_id, probe_id, time_bucket(INTERVAL '1 hour', observed_at)
WITH NO DATA
