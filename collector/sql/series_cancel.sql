-- Stop a series: nothing when it is unknown or stopped already (the caller says which).
UPDATE maintenance_series
SET cancelled_at = %(now)s, cancelled_by = %(by)s
WHERE id = %(id)s AND cancelled_at IS NULL
RETURNING id, link_ids, customer_ids
