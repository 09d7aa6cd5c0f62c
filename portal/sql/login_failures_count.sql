-- Recent failures of this account and of this address, and the oldest of each (when the
-- limit lifts).
SELECT
    count(*) FILTER (WHERE account = %(account)s),
    min(at) FILTER (WHERE account = %(account)s),
    count(*) FILTER (WHERE remote = %(remote)s),
    min(at) FILTER (WHERE remote = %(remote)s)
FROM login_failures
WHERE at > %(since)s AND (account = %(account)s OR remote = %(remote)s)
