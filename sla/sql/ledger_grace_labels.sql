-- Windows that have ended and still have open rows: within their grace, late data may
-- still change them. Few rows are open: those of running windows and of windows in grace.
SELECT DISTINCT l.window_label
FROM ledger AS l
WHERE l.status = 'open' AND l.window_end <= %(now)s
