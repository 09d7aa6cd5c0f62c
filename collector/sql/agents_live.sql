-- The live agents of a site: a heartbeat within the lease, by the server's clock (the
-- agents' own clocks may differ), and not stopped.
SELECT id FROM agents
WHERE site_id = %(site_id)s AND stopped_at IS NULL AND heartbeat_at > now() - %(lease)s
ORDER BY id
