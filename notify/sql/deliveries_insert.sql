INSERT INTO deliveries (event_id, route_id, channel_id, status, next_attempt_at, updated_at)
SELECT e, r, c, 'pending', due, %(now)s
FROM unnest(
    %(event_ids)s::text[], %(route_ids)s::text[], %(channel_ids)s::text[],
    %(due)s::timestamptz[]
) AS d (e, r, c, due)
ON CONFLICT (event_id, route_id) DO NOTHING
