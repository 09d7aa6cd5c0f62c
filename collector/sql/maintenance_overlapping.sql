SELECT id, starts_at, ends_at, announced_at, description, link_ids, customer_ids, cancelled_at,
       reference, impact, sequence
FROM maintenance_windows
WHERE starts_at < %(end)s AND ends_at > %(start)s
ORDER BY starts_at, id
