-- The updates of these incidents, in the order they were posted.
SELECT id, incident_id, posted_by, posted_at, body, link_ids, closes
FROM incident_report_updates
WHERE incident_id = ANY(%(ids)s::bigint[])
ORDER BY incident_id, posted_at, id
