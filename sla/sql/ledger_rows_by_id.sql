SELECT l.*
FROM ledger AS l
WHERE l.id = ANY(%(ids)s::bigint[])
ORDER BY l.id
FOR UPDATE
