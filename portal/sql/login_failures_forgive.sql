DELETE FROM login_failures WHERE account = %(account)s
