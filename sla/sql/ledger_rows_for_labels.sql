-- Every row (window rows and their adjustments) of these windows, of every contract or of
-- those given, locked, in id order so that two lockers always take the same rows in the
-- same order.
SELECT l.*
FROM ledger AS l
WHERE l.window_label = ANY(%(labels)s::text[])
  AND (%(contract_ids)s::text[] IS NULL OR l.contract_id = ANY(%(contract_ids)s::text[]))
ORDER BY l.id
FOR UPDATE
