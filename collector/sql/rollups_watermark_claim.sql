-- Announces, in its own committed transaction, that buckets before `until` are about to
-- be materialized. A refresh that reads the claim before this commits wrote its samples
-- before the materialization's snapshot, which therefore includes them; one that reads
-- it after waits for the materialization and recomputes what it missed.
UPDATE rollup_watermarks
SET claimed_until = greatest(claimed_until, %(until)s)
WHERE bucket = %(bucket)s
