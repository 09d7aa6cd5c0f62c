-- The acknowledgements of these links' outages that began in [start, end), oldest first.
SELECT link_id, outage_start, acknowledged_by, acknowledged_at, note
FROM outage_acknowledgements
WHERE link_id = ANY(%(link_ids)s::text[])
  AND outage_start >= %(start)s
  AND outage_start < %(end)s
ORDER BY outage_start, link_id
