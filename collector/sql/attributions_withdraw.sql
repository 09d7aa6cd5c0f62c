-- Only an attribution still in force is withdrawn; none: already withdrawn, or absent.
UPDATE outage_attributions
SET withdrawn_by = %(by)s, withdrawn_at = %(at)s, withdrawn_reason = %(reason)s
WHERE id = %(id)s AND link_id = %(link_id)s AND withdrawn_at IS NULL
RETURNING id, link_id, outage_start, starts_at, ends_at, reason, created_by, created_at,
          withdrawn_by, withdrawn_at, withdrawn_reason
