-- Config-file users no longer in the file: gone, with their sessions and tokens.
DELETE FROM portal_users
WHERE source = 'config' AND NOT (name = ANY (%(names)s))
RETURNING name
