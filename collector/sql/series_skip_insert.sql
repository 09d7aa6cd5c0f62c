-- Skip one occurrence; nothing when it is skipped already.
INSERT INTO maintenance_series_skips (series_id, starts_at, skipped_by, skipped_at, reason)
VALUES (%(series_id)s, %(starts_at)s, %(by)s, %(now)s, %(reason)s)
ON CONFLICT (series_id, starts_at) DO NOTHING
RETURNING series_id
