-- New times are a new announcement: the notice period counts from now.
UPDATE maintenance_windows
SET starts_at = %(starts_at)s, ends_at = %(ends_at)s, announced_at = %(announced_at)s,
    sequence = sequence + 1
WHERE id = %(id)s AND source = 'portal'
