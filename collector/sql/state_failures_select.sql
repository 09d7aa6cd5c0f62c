-- Every probe whose intervals cannot be derived now, oldest failure first.
SELECT link_id, probe_id, failing_since, last_failed_at, error
FROM state_failures
ORDER BY failing_since, link_id, probe_id
