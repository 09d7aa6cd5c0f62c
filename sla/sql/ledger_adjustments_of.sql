-- The adjustments of one window row, locked, in id order (as every locker takes them).
SELECT l.*
FROM ledger AS l
WHERE l.parent_id = %(id)s
ORDER BY l.id
FOR UPDATE
