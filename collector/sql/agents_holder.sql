-- Who holds an agent id that could not be registered.
SELECT host, pid, heartbeat_at FROM agents WHERE id = %(id)s
