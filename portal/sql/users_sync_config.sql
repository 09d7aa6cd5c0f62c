-- Bring one config-file user in: the file is authoritative for the users it defines.
-- A name already taken by a user made with `linkwatch users add` is left alone (the
-- caller reports the clash).
INSERT INTO portal_users AS u (
    name, role, customer_id, password_hash, disabled, source, created_at, updated_at
) VALUES (
    %(name)s, %(role)s, %(customer_id)s, %(password_hash)s, %(disabled)s, 'config',
    %(now)s, %(now)s
)
ON CONFLICT (name) DO UPDATE SET
    role = EXCLUDED.role,
    customer_id = EXCLUDED.customer_id,
    password_hash = EXCLUDED.password_hash,
    disabled = EXCLUDED.disabled,
    updated_at = EXCLUDED.updated_at
WHERE u.source = 'config'
    AND (u.role, u.customer_id, u.password_hash, u.disabled)
        IS DISTINCT FROM (EXCLUDED.role, EXCLUDED.customer_id, EXCLUDED.password_hash,
                          EXCLUDED.disabled)
