-- How far each rollup aggregate is materialized: buckets before this come from the
-- materialization, later ones from raw samples. NULL: nothing materialized yet (the
-- internal watermark is then the lowest timestamp, which Python cannot represent).
-- cagg_watermark is what the aggregate views themselves call; there is no public view
-- of it.
SELECT ca.user_view_name,
       CASE WHEN w.t > '0001-01-01 00:00:00+00' THEN w.t END
FROM _timescaledb_catalog.continuous_agg AS ca
CROSS JOIN LATERAL (
    SELECT _timescaledb_functions.to_timestamp(
        _timescaledb_functions.cagg_watermark(ca.mat_hypertable_id)
    ) AS t
) AS w
WHERE ca.user_view_schema = current_schema()
  AND ca.user_view_name IN ('samples_hourly', 'samples_daily')
