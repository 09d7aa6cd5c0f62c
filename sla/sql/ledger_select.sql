-- The ledger for people and billing exports; each filter applies only when given
-- (`begun_by`: only windows begun by then, for what customers see).
SELECT l.*
FROM ledger AS l
WHERE (%(window)s::text IS NULL OR l.window_label = %(window)s::text)
  AND (%(customer)s::text IS NULL OR l.customer_id = %(customer)s::text)
  AND (%(statuses)s::text[] IS NULL OR l.status = ANY(%(statuses)s::text[]))
  AND (%(begun_by)s::timestamptz IS NULL OR l.window_start <= %(begun_by)s::timestamptz)
ORDER BY l.window_start, l.contract_id, l.subject_id, l.id
