UPDATE deliveries
SET status = 'pending', next_attempt_at = %(now)s, attempts = 0, updated_at = %(now)s
WHERE event_id = %(event_id)s AND route_id = %(route_id)s AND status = 'failed'
