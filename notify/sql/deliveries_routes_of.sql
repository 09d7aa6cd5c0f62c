-- The routes that were sent these events, or are still sending them.
SELECT event_id, route_id
FROM deliveries
WHERE event_id = ANY(%(event_ids)s::text[]) AND status IN ('sent', 'pending')
