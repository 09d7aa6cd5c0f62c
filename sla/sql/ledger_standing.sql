-- How each contract stands in some windows, for the operations overview: the window rows'
-- met and budget figures only, so that ten thousand contracts stay one cheap read. A row
-- of a window that has not begun (written before that rule held) is not shown.
SELECT l.id, l.contract_id, l.customer_id, l.subject_id, l.window_label, l.status,
       l.window_start, l.window_end, l.measured_until, l.computed_at, l.availability_pct, l.target_pct,
       l.met, l.budget_s, l.budget_used_pct,
       (l.extra_figures ->> 'budget_warning_pct')::integer AS budget_warning_pct
FROM ledger AS l
WHERE l.kind = 'window' AND l.window_label = ANY(%(labels)s::text[])
  AND l.window_start <= %(now)s
ORDER BY l.window_label, l.contract_id, l.subject_id
