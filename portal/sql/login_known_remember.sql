INSERT INTO login_known_addresses (user_name, remote, last_at)
VALUES (%(user_name)s, %(remote)s, %(now)s)
ON CONFLICT (user_name, remote) DO UPDATE SET last_at = EXCLUDED.last_at
