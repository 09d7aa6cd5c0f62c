-- The attributions of these links overlapping [start, end), withdrawn ones too unless
-- only those in force are asked for; oldest first.
SELECT id, link_id, outage_start, starts_at, ends_at, reason, created_by, created_at,
       withdrawn_by, withdrawn_at, withdrawn_reason
FROM outage_attributions
WHERE link_id = ANY(%(link_ids)s::text[])
  AND starts_at < %(end)s
  AND ends_at > %(start)s
  AND (NOT %(in_force)s OR withdrawn_at IS NULL)
ORDER BY starts_at, id
