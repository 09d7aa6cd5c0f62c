-- Only the token's own user revokes it; a token of someone else is "not found".
UPDATE api_tokens SET revoked_at = %(now)s
WHERE id = %(id)s AND user_name = %(user_name)s AND revoked_at IS NULL
RETURNING id
