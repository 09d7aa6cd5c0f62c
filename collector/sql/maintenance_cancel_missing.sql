-- Cancel, as of now, a source's windows that it no longer lists and that have not ended;
-- ended ones are history and stay as they were. Returns what was cancelled.
UPDATE maintenance_windows
SET cancelled_at = %(now)s
WHERE source = %(source)s
  AND id <> ALL(%(kept)s::text[])
  AND cancelled_at IS NULL
  AND ends_at > %(now)s
RETURNING id, starts_at
