INSERT INTO api_tokens (user_name, label, digest, prefix, created_at, expires_at)
VALUES (%(user_name)s, %(label)s, %(digest)s, %(prefix)s, %(now)s, %(expires_at)s)
RETURNING id, user_name, label, prefix, created_at, expires_at, last_used_at, revoked_at
