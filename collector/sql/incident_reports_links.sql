-- The links of an incident's outages, each once, in order.
SELECT DISTINCT link_id
FROM incident_report_outages
WHERE incident_id = %(id)s
ORDER BY link_id
