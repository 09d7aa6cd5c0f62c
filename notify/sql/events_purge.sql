-- Events older than the samples they came from are kept no longer; one still being
-- delivered stays until it is done.
DELETE FROM events e
WHERE e.occurred_at < %(before)s
  AND NOT EXISTS (
      SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'pending'
  )
