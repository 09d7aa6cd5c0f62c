INSERT INTO portal_sessions (id_digest, user_name, csrf_token, created_at, expires_at, remote)
VALUES (%(digest)s, %(user_name)s, %(csrf_token)s, %(now)s, %(expires_at)s, %(remote)s)
