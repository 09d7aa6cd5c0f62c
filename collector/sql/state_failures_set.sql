-- A probe failed to derive (again): since when is kept from its first failure.
INSERT INTO state_failures AS f (link_id, probe_id, error)
VALUES (%(link_id)s, %(probe_id)s, %(error)s)
ON CONFLICT (link_id, probe_id) DO UPDATE
SET last_failed_at = now(), error = EXCLUDED.error
