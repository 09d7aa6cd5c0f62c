-- A new incident, open.
INSERT INTO incident_reports (title, opened_by, opened_at)
VALUES (%(title)s, %(by)s, %(at)s)
RETURNING id
