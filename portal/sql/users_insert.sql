INSERT INTO portal_users (
    name, role, customer_id, password_hash, disabled, source, created_at, updated_at
) VALUES (
    %(name)s, %(role)s, %(customer_id)s, %(password_hash)s, false, 'cli', %(now)s, %(now)s
)
ON CONFLICT (name) DO NOTHING
RETURNING name
