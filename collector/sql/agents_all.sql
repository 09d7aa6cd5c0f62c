-- Every agent ever registered, for `db stats`, with whether its lease is live by the
-- server's clock (%(lease)s: collector.agent_lease).
SELECT id, site_id, host, pid, version, started_at, heartbeat_at, stopped_at,
       spool_bytes, queued, blind_since, canaries_failing, last_sample_at,
       stopped_at IS NULL AND heartbeat_at > now() - %(lease)s AS live
FROM agents
ORDER BY site_id, id
