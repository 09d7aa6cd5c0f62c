-- Insert or update one window by id. A row owned by another source (a window created in
-- the portal with the same id as one in the config) is left as it is, and so is a
-- cancellation (only `maintenance_reinstate` lifts one).
INSERT INTO maintenance_windows AS w (
    id, description, link_ids, customer_ids, global, starts_at, ends_at, announced_at, source
) VALUES (
    %(id)s, %(description)s, %(link_ids)s, %(customer_ids)s, %(global)s,
    %(starts_at)s, %(ends_at)s, %(announced_at)s, %(source)s
)
ON CONFLICT (id) DO UPDATE SET
    description = EXCLUDED.description,
    link_ids = EXCLUDED.link_ids,
    customer_ids = EXCLUDED.customer_ids,
    global = EXCLUDED.global,
    starts_at = EXCLUDED.starts_at,
    ends_at = EXCLUDED.ends_at,
    announced_at = EXCLUDED.announced_at
WHERE w.source = EXCLUDED.source
