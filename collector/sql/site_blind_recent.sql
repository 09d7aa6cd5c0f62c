-- Blind spans open now or ended since %(since)s, newest first.
SELECT site_id, starts_at, ends_at, reason
FROM site_blind
WHERE ends_at IS NULL OR ends_at >= %(since)s
ORDER BY starts_at DESC
LIMIT %(limit)s
