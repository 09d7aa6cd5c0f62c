-- The newest window rows of some (contract, subject) pairs of one customer, `windows` per
-- pair, with the adjustments of those rows, newest window first. Each pair's rows are a
-- backward scan of the ledger's window key (a contract's labels sort by time), stopped at
-- the limit; adjustments come through the customer index, from the oldest row shown on.
WITH shown AS (
    SELECT w.*
    FROM unnest(%(contract_ids)s::text[], %(subject_ids)s::text[])
         AS p (contract_id, subject_id)
    CROSS JOIN LATERAL (
        SELECT l.*
        FROM ledger AS l
        WHERE l.kind = 'window'
          AND l.contract_id = p.contract_id
          AND l.subject_id = p.subject_id
          AND l.customer_id = %(customer_id)s
        ORDER BY l.window_label DESC
        LIMIT %(windows)s
    ) AS w
)
SELECT * FROM shown
UNION ALL
SELECT a.*
FROM ledger AS a
WHERE a.kind = 'adjustment'
  AND a.customer_id = %(customer_id)s
  AND a.window_start >= (SELECT min(window_start) FROM shown)
  AND a.parent_id IN (SELECT id FROM shown)
ORDER BY window_start DESC, contract_id, subject_id, id
