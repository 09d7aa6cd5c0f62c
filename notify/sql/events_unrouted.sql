SELECT id, kind, occurred_at, customer_id, link_id, payload
FROM events
WHERE routed_at IS NULL
ORDER BY created_at, id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
