-- The (contract, subject) pairs that have open window rows (the open-row index).
SELECT DISTINCT l.contract_id, l.subject_id
FROM ledger AS l
WHERE l.kind = 'window' AND l.status = 'open'
