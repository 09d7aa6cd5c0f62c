-- Windows with a row still open although its grace has passed: recomputed once more,
-- then closed.
SELECT DISTINCT l.window_label
FROM ledger AS l
WHERE l.status = 'open' AND l.closes_at <= %(now)s
