SELECT d.event_id, d.route_id, d.channel_id, d.status, d.attempts, d.next_attempt_at,
       d.last_error, d.note, d.sent_at, d.updated_at,
       e.kind, e.occurred_at, e.customer_id, e.link_id
FROM deliveries d
JOIN events e ON e.id = d.event_id
WHERE (%(statuses)s::text[] IS NULL OR d.status = ANY(%(statuses)s::text[]))
ORDER BY d.updated_at DESC, d.event_id
LIMIT %(limit)s
