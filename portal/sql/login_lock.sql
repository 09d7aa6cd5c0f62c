-- Sign-in attempts on one account, and from one address, are decided one at a time: the
-- lock lasts until the transaction that counts and records the attempt ends, so that
-- concurrent guesses cannot all be counted before any of them is recorded.
SELECT pg_advisory_xact_lock(hashtext('linkwatch.login.' || %(kind)s), hashtext(%(key)s))
