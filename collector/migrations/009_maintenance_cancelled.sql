-- A maintenance window can be withdrawn: from `cancelled_at` on it no longer covers
-- anything (cancelled before it began: nothing at all). The row stays, so staff and
-- customers see what was announced and when it was cancelled.
ALTER TABLE maintenance_windows ADD COLUMN IF NOT EXISTS cancelled_at timestamptz NULL;
