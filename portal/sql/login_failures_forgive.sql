-- A right password forgives the attempts from its own address only: guesses from
-- elsewhere keep counting against the account.
DELETE FROM login_failures WHERE account = %(account)s AND remote = %(remote)s
