INSERT INTO login_failures (at, account, remote) VALUES (%(now)s, %(account)s, %(remote)s)
