-- For each requested probe, the time of its newest sample (NULL: none): a backward scan
-- of the samples primary key that stops at the first row.
SELECT p.ord, (
    SELECT s.observed_at
    FROM samples AS s
    WHERE s.link_id = p.link_id AND s.probe_id = p.probe_id
    ORDER BY s.observed_at DESC
    LIMIT 1
)
FROM unnest(%(link_ids)s::text[], %(probe_ids)s::text[]) WITH ORDINALITY AS p (link_id, probe_id, ord)
