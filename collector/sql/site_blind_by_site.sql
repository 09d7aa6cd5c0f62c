-- Per site, its blind spans open now or ended since %(since)s, newest first, at most
-- %(per_site)s of each site (the open one, if any, is the newest).
SELECT site_id, starts_at, ends_at, reason
FROM (
    SELECT site_id, starts_at, ends_at, reason,
           row_number() OVER (PARTITION BY site_id ORDER BY starts_at DESC) AS n
    FROM site_blind
    WHERE ends_at IS NULL OR ends_at >= %(since)s
) AS recent
WHERE n <= %(per_site)s
ORDER BY site_id, starts_at DESC
