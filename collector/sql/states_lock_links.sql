-- Serialises rewrites of the same links' intervals across connections and processes,
-- until the transaction ends. Keys are taken in one global order (sorted), so two
-- transactions locking overlapping sets of links cannot deadlock; a hash collision only
-- serialises two links that did not need it. The OFFSET 0 keeps the sort below the calls.
SELECT pg_advisory_xact_lock(%(lock_class)s, keys.k)
FROM (
    SELECT DISTINCT hashtext(u.link_id) AS k
    FROM unnest(%(link_ids)s::text[]) AS u (link_id)
    ORDER BY k
    OFFSET 0
) AS keys
