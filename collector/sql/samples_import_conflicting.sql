-- Rows of the file that give a sample it holds already (same link, probe and time) other
-- values: each with the line that gave it first, in file order, at most %(limit)s, and
-- how many there are in all.
WITH ordered AS (
    SELECT line, link_id, probe_id, observed_at,
           first_value(line) OVER same AS first_line,
           (outcome, rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error)
               IS DISTINCT FROM
               first_value((outcome, rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error))
               OVER same AS differs
    FROM samples_import
    WINDOW same AS (PARTITION BY link_id, probe_id, observed_at ORDER BY line)
)
SELECT line, first_line, link_id, probe_id, observed_at, count(*) OVER () AS total
FROM ordered
WHERE differs
ORDER BY line
LIMIT %(limit)s
