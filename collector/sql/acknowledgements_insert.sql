-- Acknowledge an outage unless someone did already: no row comes back then.
INSERT INTO outage_acknowledgements
    (link_id, outage_start, acknowledged_by, acknowledged_at, note)
VALUES (%(link_id)s, %(outage_start)s, %(by)s, %(at)s, %(note)s)
ON CONFLICT (link_id, outage_start) DO NOTHING
RETURNING link_id, outage_start, acknowledged_by, acknowledged_at, note
