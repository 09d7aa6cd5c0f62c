-- Every agent registered, as `agents_all` (%(lease)s: collector.agent_lease), with how
-- long ago its last heartbeat and its newest sample were by the database server's
-- clock, which stamps the heartbeats and judges the leases.
SELECT id, site_id, host, pid, version, started_at, heartbeat_at, stopped_at,
       spool_bytes, queued, blind_since, canaries_failing, last_sample_at,
       stopped_at IS NULL AND heartbeat_at > now() - %(lease)s AS live,
       greatest(now() - heartbeat_at, interval '0') AS heartbeat_age,
       CASE WHEN last_sample_at IS NOT NULL  -- greatest() would make a missing lag 0
            THEN greatest(now() - last_sample_at, interval '0') END AS sample_lag
FROM agents
ORDER BY site_id, id
