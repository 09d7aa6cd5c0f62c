-- Config series the file no longer lists: no further occurrence is announced.
UPDATE maintenance_series
SET cancelled_at = %(now)s, cancelled_by = 'config'
WHERE source = 'config' AND id <> ALL(%(kept)s::text[]) AND cancelled_at IS NULL
RETURNING id
