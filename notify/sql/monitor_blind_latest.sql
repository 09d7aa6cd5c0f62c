SELECT payload FROM events
WHERE kind = 'monitor-blind'
ORDER BY occurred_at DESC, created_at DESC
LIMIT 1
