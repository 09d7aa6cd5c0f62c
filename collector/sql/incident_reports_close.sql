-- Close an open incident with its cause.
UPDATE incident_reports
SET closed_by = %(by)s, closed_at = %(at)s, cause_category = %(category)s, cause = %(cause)s
WHERE id = %(id)s AND closed_at IS NULL
