-- Failures of probes the configuration no longer has: nothing derives them any more.
DELETE FROM state_failures AS f
WHERE NOT EXISTS (
    SELECT FROM unnest(%(link_ids)s::text[], %(probe_ids)s::text[]) AS u (link_id, probe_id)
    WHERE u.link_id = f.link_id AND u.probe_id = f.probe_id
)
