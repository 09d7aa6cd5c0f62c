-- The announced occurrences of every series, newest first, for the series page.
SELECT id, starts_at, ends_at, announced_at, cancelled_at
FROM maintenance_windows
WHERE source = 'series' AND ends_at > %(since)s
ORDER BY starts_at
