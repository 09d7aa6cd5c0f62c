-- The outages of these incidents, oldest first.
SELECT incident_id, link_id, outage_start, added_by, added_at
FROM incident_report_outages
WHERE incident_id = ANY(%(ids)s::bigint[])
ORDER BY incident_id, outage_start, link_id
