SELECT id, link_id, outage_start, starts_at, ends_at, reason, created_by, created_at,
       withdrawn_by, withdrawn_at, withdrawn_reason
FROM outage_attributions
WHERE id = %(id)s AND link_id = %(link_id)s
