SELECT count(*)
FROM events
WHERE link_id = %(link_id)s AND kind = 'link-down'
  AND occurred_at >= %(since)s AND occurred_at < %(until)s
