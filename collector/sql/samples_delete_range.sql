-- Deletes a link's samples in [from, to) (to NULL: unbounded), of the given probes (NULL:
-- all of them), and
-- says per probe how many went and the first and last of them.
WITH gone AS (
    DELETE FROM samples
    WHERE link_id = %(link_id)s
      AND (%(probe_ids)s::text[] IS NULL OR probe_id = ANY (%(probe_ids)s::text[]))
      AND observed_at >= %(from)s
      AND observed_at < COALESCE(%(to)s::timestamptz, 'infinity')
    RETURNING probe_id, observed_at
)
SELECT probe_id, count(*), min(observed_at), max(observed_at)
FROM gone
GROUP BY probe_id
ORDER BY probe_id
