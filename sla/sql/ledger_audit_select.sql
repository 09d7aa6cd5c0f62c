SELECT a.id, a.ledger_id, a.at, a.actor, a.action, a.from_status, a.to_status, a.detail
FROM ledger_audit AS a
WHERE %(ids)s::bigint[] IS NULL OR a.ledger_id = ANY(%(ids)s::bigint[])
ORDER BY a.id
