INSERT INTO link_alerts (link_id, down_since)
SELECT * FROM unnest(%(link_ids)s::text[], %(down_since)s::timestamptz[])
ON CONFLICT (link_id) DO NOTHING
