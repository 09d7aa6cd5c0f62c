UPDATE ledger SET
    status = 'approved', approved_by = %(actor)s, approved_at = %(now)s,
    approval_note = %(note)s
WHERE id = %(id)s AND status = 'closed'
RETURNING *
