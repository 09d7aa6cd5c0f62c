UPDATE maintenance_windows
SET cancelled_at = %(cancelled_at)s
WHERE id = %(id)s AND source = 'portal' AND cancelled_at IS NULL
