-- What the ledger credits one contract for its windows starting in [since, until): every
-- window row's amount plus its adjustments' (settled, pending or manual; a withdrawn
-- adjustment's amount is 0). Adjustments carry their window row's window_start.
SELECT sum(amount)
FROM ledger
WHERE customer_id = %(customer_id)s
  AND contract_id = %(contract_id)s
  AND window_start >= %(since)s
  AND window_start < %(until)s
