-- Held until the migrating transaction ends, so a second process waits and then finds
-- nothing left to do.
SELECT pg_advisory_xact_lock(%(key)s)
