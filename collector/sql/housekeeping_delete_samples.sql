-- Deletes up to batch_size of the oldest samples in [from, cutoff), oldest first, and
-- returns how many and the newest time deleted (where the next batch starts). Small
-- batches keep each transaction short for autovacuum and for the writers; starting at
-- `from` lets the index scan skip the entries earlier batches left dead. Oldest first
-- means an interrupted run leaves no gap: what remains is always a newer suffix.
WITH gone AS (
    DELETE FROM samples
    WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM samples
        WHERE observed_at >= coalesce(%(from)s::timestamptz, '-infinity')
          AND observed_at < %(cutoff)s
        ORDER BY observed_at
        LIMIT %(batch_size)s
    ))
    RETURNING observed_at
)
SELECT count(*), max(observed_at) FROM gone
