-- How many rows of the file give a sample it holds already (same link, probe and time)
-- other values, and how many repeat an earlier row at all; then those giving other
-- values, each with the line that gave the sample first, in file order, at most
-- %(limit)s (one row with NULLs after the counts where there are none).
WITH ordered AS (
    SELECT line, link_id, probe_id, observed_at,
           first_value(line) OVER same AS first_line,
           (outcome, rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error)
               IS DISTINCT FROM
               first_value((outcome, rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms, loss_pct, error))
               OVER same AS differs
    FROM samples_import
    WINDOW same AS (PARTITION BY link_id, probe_id, observed_at ORDER BY line)
), counts AS (
    SELECT count(*) FILTER (WHERE differs) AS conflicts,
           count(*) FILTER (WHERE line <> first_line) AS repeats
    FROM ordered
), shown AS (
    SELECT line, first_line, link_id, probe_id, observed_at
    FROM ordered
    WHERE differs
    ORDER BY line
    LIMIT %(limit)s
)
SELECT counts.conflicts, counts.repeats,
       shown.line, shown.first_line, shown.link_id, shown.probe_id, shown.observed_at
FROM counts
LEFT JOIN shown ON true
ORDER BY shown.line
