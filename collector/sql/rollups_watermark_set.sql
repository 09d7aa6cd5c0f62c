-- Records that buckets before `until` are materialized.
INSERT INTO rollup_watermarks (bucket, materialized_until, claimed_until)
VALUES (%(bucket)s, %(until)s, %(until)s)
ON CONFLICT (bucket) DO UPDATE SET
    materialized_until = EXCLUDED.materialized_until,
    claimed_until = greatest(rollup_watermarks.claimed_until, EXCLUDED.materialized_until)
