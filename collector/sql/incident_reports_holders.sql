-- Which incident holds each of these outages, if any.
SELECT o.link_id, o.outage_start, o.incident_id
FROM incident_report_outages AS o
JOIN unnest(%(link_ids)s::text[], %(starts)s::timestamptz[]) AS w (link_id, outage_start)
  ON w.link_id = o.link_id AND w.outage_start = o.outage_start
ORDER BY o.incident_id, o.link_id
