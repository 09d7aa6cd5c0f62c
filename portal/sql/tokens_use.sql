-- The enabled user of a live token; marks it used (at most once a minute, to spare writes).
WITH found AS (
    SELECT t.id, t.last_used_at
    FROM api_tokens t
    JOIN portal_users u ON u.name = t.user_name
    WHERE t.digest = %(digest)s AND t.revoked_at IS NULL
        AND (t.expires_at IS NULL OR t.expires_at > %(now)s) AND NOT u.disabled
), touched AS (
    UPDATE api_tokens t SET last_used_at = %(now)s
    FROM found
    WHERE t.id = found.id
        AND (found.last_used_at IS NULL OR found.last_used_at < %(now)s - interval '1 minute')
)
SELECT u.name, u.role, u.customer_id, u.password_hash, u.disabled, u.source, u.created_at,
       u.updated_at
FROM found
JOIN api_tokens t ON t.id = found.id
JOIN portal_users u ON u.name = t.user_name
