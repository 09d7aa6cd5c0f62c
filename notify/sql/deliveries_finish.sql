UPDATE deliveries
SET status = %(status)s, attempts = %(attempts)s, next_attempt_at = %(next_attempt_at)s,
    last_error = %(last_error)s, note = %(note)s,
    sent_at = CASE WHEN %(status)s = 'sent' THEN %(now)s ELSE sent_at END,
    updated_at = %(now)s
WHERE event_id = %(event_id)s AND route_id = %(route_id)s
