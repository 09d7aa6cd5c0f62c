-- The same bounded, oldest-first batches as housekeeping_delete_samples.sql, for the
-- plain-PostgreSQL rollups table (both widths) by bucket start.
WITH gone AS (
    DELETE FROM rollups
    WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM rollups
        WHERE bucket_start >= coalesce(%(from)s::timestamptz, '-infinity')
          AND bucket_start < %(cutoff)s
        ORDER BY bucket_start
        LIMIT %(batch_size)s
    ))
    RETURNING bucket_start
)
SELECT count(*), max(bucket_start) FROM gone
