-- Change a `linkwatch users add` user; config-file users change in the file.
UPDATE portal_users SET
    password_hash = coalesce(%(password_hash)s, password_hash),
    disabled = coalesce(%(disabled)s, disabled),
    updated_at = %(now)s
WHERE name = %(name)s AND source = 'cli'
RETURNING name
