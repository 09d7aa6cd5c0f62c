-- Where a ledger row lives (its window and customer), so the API can check the caller's
-- scope before reading the row itself.
SELECT l.window_label, l.customer_id
FROM ledger AS l
WHERE l.id = %(id)s::bigint
