-- Attributions and withdrawals made in [since, until), of these links (NULL: every link),
-- newest first: the audit trail's part about them.
SELECT id, link_id, outage_start, starts_at, ends_at, reason, created_by, created_at,
       withdrawn_by, withdrawn_at, withdrawn_reason
FROM outage_attributions
WHERE (%(link_ids)s::text[] IS NULL OR link_id = ANY(%(link_ids)s::text[]))
  AND (%(since)s::timestamptz IS NULL
       OR created_at >= %(since)s::timestamptz OR withdrawn_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL
       OR created_at < %(until)s::timestamptz OR withdrawn_at < %(until)s::timestamptz)
ORDER BY greatest(created_at, coalesce(withdrawn_at, created_at)) DESC, id DESC
LIMIT %(limit)s
