-- Where raw samples a refresh may read begin: the retention policy's horizon (on the
-- database's clock, as the policy runs) and the oldest sample. A refresh over a range
-- whose chunks were dropped would empty the aggregate there, so refreshes stay above both.
SELECT now() - (
           SELECT (config ->> 'drop_after')::interval
           FROM timescaledb_information.jobs
           WHERE proc_name = 'policy_retention'
             AND hypertable_schema = current_schema()
             AND hypertable_name = 'samples'
       ),
       (SELECT min(observed_at) FROM samples)
