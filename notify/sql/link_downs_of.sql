-- The link-down events of these links whose outage began in [since, until].
SELECT link_id, occurred_at
FROM events
WHERE kind = 'link-down'
  AND link_id = ANY(%(link_ids)s::text[])
  AND occurred_at BETWEEN %(since)s AND %(until)s
ORDER BY occurred_at, link_id
