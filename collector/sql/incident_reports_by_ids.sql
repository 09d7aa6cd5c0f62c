-- These incidents' own rows.
SELECT id, title, opened_by, opened_at, closed_by, closed_at, cause_category, cause
FROM incident_reports
WHERE id = ANY(%(ids)s::bigint[])
