-- Entries of the operations trail in [since, until), newest first: of one subject, of
-- an actor, and of what concerns these links or customers (NULL: everything).
SELECT id, at, actor, action, subject, link_ids, customer_ids, detail
FROM work_log
WHERE (%(since)s::timestamptz IS NULL OR at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s::timestamptz)
  AND (%(subject)s::text IS NULL OR subject = %(subject)s::text)
  AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
  AND (%(link_ids)s::text[] IS NULL
       OR link_ids && %(link_ids)s::text[] OR customer_ids && %(customer_ids)s::text[])
ORDER BY at DESC, id DESC
LIMIT %(limit)s
