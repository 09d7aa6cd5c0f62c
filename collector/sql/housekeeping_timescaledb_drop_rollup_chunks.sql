-- Drops a rollup aggregate's chunks that hold only buckets older than the cutoff; the
-- row count is how many went.
SELECT drop_chunks(%(view)s::regclass, older_than => %(cutoff)s::timestamptz)
