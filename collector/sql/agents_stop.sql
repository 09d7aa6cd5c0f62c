-- An agent stops: its links move to the site's other agents at their next heartbeat.
UPDATE agents SET stopped_at = now()
WHERE id = %(id)s AND host = %(host)s AND pid = %(pid)s AND stopped_at IS NULL
