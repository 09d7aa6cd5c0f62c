-- What a sign-in attempt is decided by: the recent attempts on this account from this
-- address, from this address on any account, and on this account from anywhere (with
-- the first or last of each, for when a limit lifts), and whether the account signed in
-- from this address before.
SELECT
    count(*) FILTER (WHERE account = %(account)s AND remote = %(remote)s),
    min(at) FILTER (WHERE account = %(account)s AND remote = %(remote)s),
    count(*) FILTER (WHERE remote = %(remote)s),
    min(at) FILTER (WHERE remote = %(remote)s),
    count(*) FILTER (WHERE account = %(account)s),
    max(at) FILTER (WHERE account = %(account)s),
    EXISTS (
        SELECT 1 FROM login_known_addresses WHERE user_name = %(name)s AND remote = %(remote)s
    )
FROM login_failures
WHERE at > %(since)s AND (account = %(account)s OR remote = %(remote)s)
