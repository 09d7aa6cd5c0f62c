-- These probes derived: their failures, if any were recorded, are over.
DELETE FROM state_failures AS f
USING unnest(%(link_ids)s::text[], %(probe_ids)s::text[]) AS u (link_id, probe_id)
WHERE f.link_id = u.link_id AND f.probe_id = u.probe_id
