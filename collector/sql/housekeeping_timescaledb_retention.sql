-- The retention policy job on samples and how its runs went. Infinite timestamps (a job
-- that never ran) become NULL: Python has no datetime for them.
SELECT j.job_id,
       (j.config ->> 'drop_after')::interval,
       CASE WHEN isfinite(s.next_start) THEN s.next_start END,
       CASE WHEN isfinite(s.last_successful_finish) THEN s.last_successful_finish END,
       s.last_run_status,
       s.total_failures
FROM timescaledb_information.jobs AS j
LEFT JOIN timescaledb_information.job_stats AS s ON s.job_id = j.job_id
WHERE j.proc_name = 'policy_retention'
  AND j.hypertable_schema = current_schema()
  AND j.hypertable_name = 'samples'
