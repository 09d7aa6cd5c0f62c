SELECT status, next_attempt_at, note FROM deliveries
WHERE event_id = %(event_id)s AND route_id = %(route_id)s
