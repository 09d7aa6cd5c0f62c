-- Every session of a user whose password changed or who was disabled.
DELETE FROM portal_sessions WHERE user_name = %(name)s
