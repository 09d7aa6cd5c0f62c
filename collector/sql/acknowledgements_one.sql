-- The acknowledgement of one outage, if any.
SELECT link_id, outage_start, acknowledged_by, acknowledged_at, note
FROM outage_acknowledgements
WHERE link_id = %(link_id)s AND outage_start = %(outage_start)s
