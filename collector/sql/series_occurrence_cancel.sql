-- Withdraw an announced occurrence that has not ended (a skip after its announcement).
UPDATE maintenance_windows
SET cancelled_at = %(now)s
WHERE id = %(id)s AND source = 'series' AND cancelled_at IS NULL AND ends_at > %(now)s
RETURNING id
