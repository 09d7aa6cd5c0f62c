-- Take the due deliveries for one lease: a dispatcher that dies while sending leaves
-- them pending, due again when the lease ends, so nothing is lost (only sent again).
WITH due AS (
    SELECT event_id, route_id
    FROM deliveries
    WHERE status = 'pending' AND next_attempt_at <= %(now)s
    ORDER BY next_attempt_at, event_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE deliveries d
SET attempts = d.attempts + 1, next_attempt_at = %(lease_until)s, updated_at = %(now)s
FROM due, events e
WHERE d.event_id = due.event_id AND d.route_id = due.route_id AND e.id = d.event_id
RETURNING d.event_id, d.route_id, d.channel_id, d.attempts,
          e.kind, e.occurred_at, e.customer_id, e.link_id, e.payload
