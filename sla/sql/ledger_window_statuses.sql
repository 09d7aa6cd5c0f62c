SELECT l.contract_id, l.subject_id, l.status
FROM ledger AS l
WHERE l.kind = 'window' AND l.window_label = %(window)s
