SELECT name, role, customer_id, password_hash, disabled, source, created_at, updated_at
FROM portal_users
WHERE %(name)s::text IS NULL OR name = %(name)s
ORDER BY name
