-- The interval a policy job on samples currently uses, NULL when there is no such job.
SELECT (config ->> %(key)s)::interval
FROM timescaledb_information.jobs
WHERE proc_name = %(proc_name)s
  AND hypertable_schema = current_schema()
  AND hypertable_name = 'samples'
