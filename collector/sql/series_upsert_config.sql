-- A series the config lists, inserted or brought up to date. A series created in the
-- portal under the same id is left as it is, and so is a cancellation.
INSERT INTO maintenance_series AS s (
    id, description, reference, link_ids, customer_ids, global, local_start, zone,
    duration, rrule, lead, source, created_by, created_at
) VALUES (
    %(id)s, %(description)s, %(reference)s, %(link_ids)s, %(customer_ids)s, %(global)s,
    %(local_start)s, %(zone)s, %(duration)s, %(rrule)s, %(lead)s, 'config', 'config',
    %(created_at)s
)
ON CONFLICT (id) DO UPDATE SET
    description = EXCLUDED.description,
    reference = EXCLUDED.reference,
    link_ids = EXCLUDED.link_ids,
    customer_ids = EXCLUDED.customer_ids,
    global = EXCLUDED.global,
    local_start = EXCLUDED.local_start,
    zone = EXCLUDED.zone,
    duration = EXCLUDED.duration,
    rrule = EXCLUDED.rrule,
    lead = EXCLUDED.lead
WHERE s.source = 'config'
