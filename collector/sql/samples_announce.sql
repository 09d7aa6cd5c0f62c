-- An agent stored samples: per measurement the earliest of them, kept as the earliest
-- not yet claimed. Keys come sorted, so that two writers lock rows in one order.
INSERT INTO samples_announced AS s (link_id, probe_id, earliest)
SELECT * FROM unnest(%(link_ids)s::text[], %(probe_ids)s::text[], %(earliest)s::timestamptz[])
ON CONFLICT (link_id, probe_id) DO UPDATE
SET earliest = LEAST(s.earliest, EXCLUDED.earliest)
