UPDATE ledger SET
    status = 'applied', applied_by = %(actor)s, applied_at = %(now)s,
    invoice_ref = %(invoice_ref)s
WHERE id = %(id)s AND status = 'approved'
RETURNING *
