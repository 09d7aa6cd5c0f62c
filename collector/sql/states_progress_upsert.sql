-- Moves a probe's progress forward, only over a stored timeline without holes: either
-- the derivation began at the probe's first sample (grounded), or at or before the
-- newest sample already included. A derivation that began after that point (samples
-- between were never derived, e.g. after a crash) leaves it, so the catch-up finds them.
INSERT INTO state_progress AS g (link_id, probe_id, derived_through)
SELECT u.link_id, u.probe_id, u.derived_through
FROM unnest(
    %(link_ids)s::text[], %(probe_ids)s::text[], %(derived_through)s::timestamptz[],
    %(from)s::timestamptz[], %(grounded)s::boolean[]
) AS u (link_id, probe_id, derived_through, from_, grounded)
WHERE u.grounded
   OR EXISTS (
       SELECT FROM state_progress AS p
       WHERE p.link_id = u.link_id
         AND p.probe_id = u.probe_id
         AND p.derived_through >= u.from_
   )
ON CONFLICT (link_id, probe_id) DO UPDATE
SET derived_through = GREATEST(g.derived_through, EXCLUDED.derived_through)
