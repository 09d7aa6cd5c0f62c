-- Keep the `keep` addresses an account signed in from most recently.
DELETE FROM login_known_addresses
WHERE user_name = %(user_name)s AND remote NOT IN (
    SELECT remote FROM login_known_addresses
    WHERE user_name = %(user_name)s
    ORDER BY last_at DESC, remote
    LIMIT %(keep)s
)
