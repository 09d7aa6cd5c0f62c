-- Announce one occurrence: its maintenance window, written once (the id is stable).
INSERT INTO maintenance_windows (
    id, description, link_ids, customer_ids, global, starts_at, ends_at, announced_at, source
) VALUES (
    %(id)s, %(description)s, %(link_ids)s, %(customer_ids)s, %(global)s,
    %(starts_at)s, %(ends_at)s, %(announced_at)s, 'series'
)
ON CONFLICT (id) DO NOTHING
RETURNING id
