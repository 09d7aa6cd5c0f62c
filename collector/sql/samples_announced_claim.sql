-- The central process takes what agents stored, to derive it: the rows are gone once
-- this commits (the deriver keeps what it has not derived yet). Locked in key order,
-- as the agents' upserts lock them, so the two never deadlock.
WITH claimed AS (
    SELECT link_id, probe_id FROM samples_announced
    ORDER BY link_id, probe_id
    LIMIT %(limit)s
    FOR UPDATE
)
DELETE FROM samples_announced s
USING claimed c
WHERE s.link_id = c.link_id AND s.probe_id = c.probe_id
RETURNING s.link_id, s.probe_id, s.earliest
