-- Raw samples of some probes of one link over [start, end), aggregated per bucket of
-- `width` aligned to `origin` (as the rollups are): the 24-hour charts, and interface
-- traffic and HTTP response phases, which rollups do not carry. Each probe's scan is a
-- range of the primary key (link_id, probe_id, observed_at), whatever the link's history.
-- The phases are milestones since the check began; the connection is ready at the TLS
-- handshake's end, or at the TCP connect's for plain http.
SELECT probe_id,
       date_bin(%(width)s, observed_at, %(origin)s) AS bucket_start,
       avg(rtt_ms) AS rtt_mean_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY rtt_ms) AS rtt_p95_ms,
       avg(loss_pct) AS loss_pct,
       avg(jitter_ms) AS jitter_ms,
       avg((metrics ->> 'in_bps')::double precision) AS in_bps,
       avg((metrics ->> 'out_bps')::double precision) AS out_bps,
       avg(coalesce(metrics ->> 'tls_ms', metrics ->> 'connect_ms')::double precision)
           AS connected_ms,
       avg((metrics ->> 'first_byte_ms')::double precision) AS first_byte_ms,
       avg((metrics ->> 'total_ms')::double precision) AS total_ms
FROM samples
WHERE link_id = %(link_id)s
  AND probe_id = ANY(%(probe_ids)s::text[])
  AND observed_at >= %(start)s
  AND observed_at < %(end)s
GROUP BY 1, 2
ORDER BY 1, 2
