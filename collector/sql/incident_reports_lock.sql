-- An incident's row, held until the transaction ends: its outages and updates are
-- changed by one writer at a time, and never after it is closed.
SELECT closed_at, closed_by
FROM incident_reports
WHERE id = %(id)s
FOR UPDATE
