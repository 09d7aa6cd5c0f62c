-- One update on an incident, as its customers are told it.
INSERT INTO incident_report_updates (incident_id, posted_by, posted_at, body, link_ids, closes)
VALUES (%(id)s, %(by)s, %(at)s, %(body)s, %(link_ids)s, %(closes)s)
RETURNING id
