-- One entry of the operations trail.
INSERT INTO work_log (at, actor, action, subject, link_ids, customer_ids, detail)
VALUES (%(at)s, %(actor)s, %(action)s, %(subject)s, %(link_ids)s, %(customer_ids)s, %(detail)s)
RETURNING id
