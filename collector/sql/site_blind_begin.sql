-- A blind span begins (after site_blind_end has closed any left open, say by a process
-- killed while blind).
INSERT INTO site_blind (site_id, starts_at, reason)
VALUES (%(site_id)s, %(at)s, %(reason)s)
ON CONFLICT DO NOTHING
