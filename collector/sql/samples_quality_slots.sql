-- Per link and slot (`slot` wide, aligned to `origin`, the window's start): the sums and
-- counts of loss and RTT of the available (up or degraded) samples of the given probes
-- in [start, end). Sums in numeric, so that the caller's means are exact; RTT only from
-- the probes flagged `rtt` (network round trips, not HTTP response times). Slots without
-- such samples are absent. A primary-key range per probe.
SELECT p.link_id,
       date_bin(%(slot)s::interval, s.observed_at, %(origin)s::timestamptz) AS slot_start,
       coalesce(sum(s.loss_pct::numeric), 0),
       count(s.loss_pct),
       coalesce(sum(s.rtt_ms::numeric) FILTER (WHERE p.rtt), 0),
       count(s.rtt_ms) FILTER (WHERE p.rtt)
FROM unnest(%(link_ids)s::text[], %(probe_ids)s::text[], %(rtt)s::boolean[])
     AS p (link_id, probe_id, rtt)
JOIN samples AS s
  ON s.link_id = p.link_id AND s.probe_id = p.probe_id
 AND s.observed_at >= %(start)s AND s.observed_at < %(end)s
 AND s.outcome IN ('up', 'degraded')
GROUP BY 1, 2
ORDER BY 1, 2
