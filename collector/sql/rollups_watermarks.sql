SELECT bucket, materialized_until, claimed_until FROM rollup_watermarks
