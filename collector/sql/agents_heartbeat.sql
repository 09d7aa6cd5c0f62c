-- An agent renews its lease and says how it is; no row: the id is no longer its own
-- (its lease ran out and another process took the id over).
UPDATE agents
SET heartbeat_at = now(), spool_bytes = %(spool_bytes)s, queued = %(queued)s,
    blind_since = %(blind_since)s, canaries_failing = %(canaries_failing)s,
    last_sample_at = GREATEST(last_sample_at, %(last_sample_at)s)
WHERE id = %(id)s AND host = %(host)s AND pid = %(pid)s AND stopped_at IS NULL
RETURNING id
