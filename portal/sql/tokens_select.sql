SELECT id, user_name, label, prefix, created_at, expires_at, last_used_at, revoked_at
FROM api_tokens
WHERE user_name = %(user_name)s
ORDER BY created_at DESC, id DESC
