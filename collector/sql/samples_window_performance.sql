-- RTT (mean, p95) and loss (mean) of the available (up or degraded) samples of the given
-- probes in [start, end): a down sample has no RTT, and its loss is the outage itself,
-- which availability already counts. A primary-key range per probe.
SELECT avg(s.rtt_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY s.rtt_ms),
       avg(s.loss_pct)
FROM unnest(%(link_ids)s::text[], %(probe_ids)s::text[]) AS p (link_id, probe_id)
JOIN samples AS s
  ON s.link_id = p.link_id AND s.probe_id = p.probe_id
 AND s.observed_at >= %(start)s AND s.observed_at < %(end)s
 AND s.outcome IN ('up', 'degraded')
