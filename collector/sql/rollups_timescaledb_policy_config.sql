-- The refresh policy of one continuous aggregate as (start_offset, end_offset,
-- schedule_interval); no row when it has none.
SELECT (config ->> 'start_offset')::interval,
       (config ->> 'end_offset')::interval,
       schedule_interval
FROM timescaledb_information.jobs
WHERE proc_name = 'policy_refresh_continuous_aggregate'
  AND hypertable_schema = current_schema()
  AND hypertable_name = %(view)s
