-- Must run outside a transaction block (pool connections are in autocommit mode).
-- TimescaleDB shrinks the window to whole buckets; callers pass bucket-aligned bounds.
CALL refresh_continuous_aggregate(%(view)s::regclass, %(start)s::timestamptz, %(end)s::timestamptz)
