-- Incidents concerning any of these links (NULL: any link) that are open, or were
-- closed at or after `since`, or hold an outage that began at or after it; newest first.
SELECT r.id
FROM incident_reports AS r
WHERE (r.closed_at IS NULL OR r.closed_at >= %(since)s
       OR EXISTS (SELECT FROM incident_report_outages AS s
                  WHERE s.incident_id = r.id AND s.outage_start >= %(since)s))
  AND (%(link_ids)s::text[] IS NULL
       OR EXISTS (SELECT FROM incident_report_outages AS o
                  WHERE o.incident_id = r.id AND o.link_id = ANY(%(link_ids)s::text[])))
ORDER BY r.opened_at DESC, r.id DESC
LIMIT %(limit)s
