-- The status of each window row of one customer in some windows (the customer index).
SELECT l.contract_id, l.subject_id, l.window_label, l.status
FROM ledger AS l
WHERE l.customer_id = %(customer)s
  AND l.kind = 'window'
  AND l.window_label = ANY(%(labels)s::text[])
