-- For each requested probe, its oldest sample newer than its stored intervals include
-- (any sample at all when it has none): where the start-up catch-up must derive from.
-- min() over the primary key is one index probe.
SELECT p.ord, (
    SELECT min(s.observed_at)
    FROM samples AS s
    WHERE s.link_id = p.link_id
      AND s.probe_id = p.probe_id
      AND (g.derived_through IS NULL OR s.observed_at > g.derived_through)
)
FROM unnest(%(link_ids)s::text[], %(probe_ids)s::text[]) WITH ORDINALITY AS p (link_id, probe_id, ord)
LEFT JOIN state_progress AS g ON g.link_id = p.link_id AND g.probe_id = p.probe_id
ORDER BY p.ord
