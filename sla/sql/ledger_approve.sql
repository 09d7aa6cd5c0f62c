UPDATE ledger SET status = 'approved', approved_by = %(actor)s, approved_at = %(now)s
WHERE id = %(id)s AND status = 'closed'
RETURNING *
