-- An agent starts: its row, unless another process holds the same id with a live lease
-- (no row returned then). A row of an earlier run of the id, stopped or expired, is
-- taken over.
INSERT INTO agents AS a (id, site_id, host, pid, version, started_at, heartbeat_at)
VALUES (%(id)s, %(site_id)s, %(host)s, %(pid)s, %(version)s, now(), now())
ON CONFLICT (id) DO UPDATE
SET site_id = EXCLUDED.site_id, host = EXCLUDED.host, pid = EXCLUDED.pid,
    version = EXCLUDED.version, started_at = now(), heartbeat_at = now(), stopped_at = NULL,
    spool_bytes = 0, queued = 0, blind_since = NULL, canaries_failing = 0
WHERE a.stopped_at IS NOT NULL
   OR a.heartbeat_at <= now() - %(lease)s
   OR (a.host = EXCLUDED.host AND a.pid = EXCLUDED.pid)
RETURNING a.id
