-- One stored metric of the available (up or degraded) samples of the given probes in
-- [start, end): its count, exact sum and max, how many samples are strictly over
-- `above`, and the sorted samples around the ranks that p95 and p99 interpolate between
-- (q x (n - 1), as percentile_cont does; exact in numeric). `metric` is a sample column
-- or a key of the sample's `metrics`; a sample without it is left out.
WITH known AS (
    SELECT v.x
    FROM unnest(%(link_ids)s::text[], %(probe_ids)s::text[]) AS p (link_id, probe_id)
    JOIN samples AS s
      ON s.link_id = p.link_id AND s.probe_id = p.probe_id
     AND s.observed_at >= %(start)s AND s.observed_at < %(end)s
     AND s.outcome IN ('up', 'degraded')
    CROSS JOIN LATERAL (
        SELECT CASE %(metric)s::text
                   WHEN 'rtt_ms' THEN s.rtt_ms::numeric
                   WHEN 'rtt_min_ms' THEN s.rtt_min_ms::numeric
                   WHEN 'rtt_max_ms' THEN s.rtt_max_ms::numeric
                   WHEN 'jitter_ms' THEN s.jitter_ms::numeric
                   WHEN 'loss_pct' THEN s.loss_pct::numeric
                   ELSE CASE WHEN jsonb_typeof(s.metrics -> %(metric)s::text) = 'number'
                             THEN (s.metrics -> %(metric)s::text)::numeric END
               END AS x
    ) AS v
    WHERE v.x IS NOT NULL
), ranked AS (
    SELECT x, row_number() OVER (ORDER BY x) - 1 AS i, count(*) OVER () AS n FROM known
)
SELECT count(*),
       coalesce(sum(x), 0),
       max(x),
       count(*) FILTER (WHERE x > %(above)s::numeric),
       min(x) FILTER (WHERE i = floor(0.95 * (n - 1))),
       min(x) FILTER (WHERE i = least(floor(0.95 * (n - 1)) + 1, n - 1)),
       min(x) FILTER (WHERE i = floor(0.99 * (n - 1))),
       min(x) FILTER (WHERE i = least(floor(0.99 * (n - 1)) + 1, n - 1))
FROM ranked
