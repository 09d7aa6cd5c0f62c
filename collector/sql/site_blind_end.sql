-- The open blind span ends.
UPDATE site_blind SET ends_at = %(at)s
WHERE site_id = %(site_id)s AND ends_at IS NULL AND starts_at < %(at)s
