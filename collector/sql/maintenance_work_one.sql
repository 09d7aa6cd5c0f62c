SELECT id, starts_at, ends_at, announced_at, description, link_ids, customer_ids, cancelled_at,
       reference, impact, sequence, source
FROM maintenance_windows
WHERE id = %(id)s
