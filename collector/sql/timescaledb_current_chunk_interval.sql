-- The chunk interval new samples chunks get; NULL before samples is a hypertable.
SELECT time_interval
FROM timescaledb_information.dimensions
WHERE hypertable_schema = current_schema()
  AND hypertable_name = 'samples'
  AND dimension_number = 1
