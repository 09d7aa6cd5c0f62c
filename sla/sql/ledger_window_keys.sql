-- The (contract, subject) pairs that have a window row for one window (its label index).
SELECT l.contract_id, l.subject_id
FROM ledger AS l
WHERE l.kind = 'window' AND l.window_label = %(window)s
