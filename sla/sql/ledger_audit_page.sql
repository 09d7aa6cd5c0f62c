-- The audit trail for people, newest first, with what each entry is about; each filter
-- applies only when given. `row` matches a row's own entries and its adjustments'.
SELECT a.id, a.ledger_id, a.at, a.actor, a.action, a.from_status, a.to_status, a.detail,
       l.kind, l.parent_id, l.contract_id, l.customer_id, l.subject_id, l.window_label
FROM ledger_audit AS a
JOIN ledger AS l ON l.id = a.ledger_id
WHERE (%(row)s::bigint IS NULL OR %(row)s::bigint IN (l.id, l.parent_id))
  AND (%(actor)s::text IS NULL OR a.actor = %(actor)s::text)
  AND (%(action)s::text IS NULL OR a.action = %(action)s::text)
  AND (%(window)s::text IS NULL OR l.window_label = %(window)s::text)
  AND (%(customer)s::text IS NULL OR l.customer_id = %(customer)s::text)
  AND (%(since)s::timestamptz IS NULL OR a.at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR a.at < %(until)s::timestamptz)
ORDER BY a.id DESC
LIMIT %(limit)s
