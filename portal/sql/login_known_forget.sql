-- A new password or a disabled account starts afresh: no address is known any more.
DELETE FROM login_known_addresses WHERE user_name = %(name)s
