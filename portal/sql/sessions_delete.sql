DELETE FROM portal_sessions WHERE id_digest = %(digest)s
