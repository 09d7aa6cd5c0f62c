-- Outages added to an incident; those another incident (or this one) holds already are
-- left out of what it returns.
INSERT INTO incident_report_outages (incident_id, link_id, outage_start, added_by, added_at)
SELECT %(id)s, link_id, outage_start, %(by)s, %(at)s
FROM unnest(%(link_ids)s::text[], %(starts)s::timestamptz[]) AS o (link_id, outage_start)
ON CONFLICT (link_id, outage_start) DO NOTHING
RETURNING link_id, outage_start
