INSERT INTO ledger_audit (ledger_id, at, actor, action, from_status, to_status, detail)
VALUES (%(ledger_id)s, %(at)s, %(actor)s, %(action)s, %(from_status)s, %(to_status)s,
        %(detail)s)
