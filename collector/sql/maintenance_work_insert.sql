-- A window created by staff; an id the config already uses is skipped (nothing returned).
INSERT INTO maintenance_windows (
    id, description, link_ids, customer_ids, global, starts_at, ends_at, announced_at,
    source, reference, impact, sequence
) VALUES (
    %(id)s, %(description)s, %(link_ids)s, %(customer_ids)s, %(global)s, %(starts_at)s,
    %(ends_at)s, %(announced_at)s, 'portal', %(reference)s, %(impact)s, 0
)
ON CONFLICT (id) DO NOTHING
RETURNING id
