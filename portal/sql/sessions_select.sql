-- A live session and its enabled user, or nothing.
SELECT s.csrf_token, s.created_at, s.expires_at,
       u.name, u.role, u.customer_id, u.password_hash, u.disabled, u.source, u.created_at,
       u.updated_at
FROM portal_sessions s
JOIN portal_users u ON u.name = s.user_name
WHERE s.id_digest = %(digest)s AND s.expires_at > %(now)s AND NOT u.disabled
