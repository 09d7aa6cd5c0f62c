-- The compliance rate's one read: per contract and window that ended after `since`, how
-- many of its window rows (one per subject) were met and how many had an availability
-- (met NULL is "n/a": not counted). Adjustments restate credits, not whether a window
-- was met; a running window is left out by the caller, which knows the contract's zone.
SELECT l.contract_id,
       l.customer_id,
       l.window_label,
       l.timezone,
       l.window_end,
       count(*) FILTER (WHERE l.met)::int AS met,
       count(l.met)::int AS counted
FROM ledger AS l
WHERE l.kind = 'window'
  AND l.window_end > %(since)s::timestamptz
  -- No window is longer than a year: lets the customer index narrow the scan.
  AND l.window_start > %(since)s::timestamptz - interval '367 days'
  AND (%(customer)s::text IS NULL OR l.customer_id = %(customer)s::text)
GROUP BY l.contract_id, l.customer_id, l.window_label, l.timezone, l.window_end
ORDER BY l.window_end, l.contract_id
