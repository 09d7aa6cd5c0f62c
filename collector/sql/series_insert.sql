-- A new series; nothing when the id is taken (the caller says so).
INSERT INTO maintenance_series (
    id, description, reference, link_ids, customer_ids, global, local_start, zone,
    duration, rrule, lead, source, created_by, created_at
) VALUES (
    %(id)s, %(description)s, %(reference)s, %(link_ids)s, %(customer_ids)s, %(global)s,
    %(local_start)s, %(zone)s, %(duration)s, %(rrule)s, %(lead)s, %(source)s,
    %(created_by)s, %(created_at)s
)
ON CONFLICT (id) DO NOTHING
RETURNING id
