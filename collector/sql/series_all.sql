-- Every maintenance series, cancelled ones too, with its skipped occurrences.
SELECT s.id, s.description, s.reference, s.link_ids, s.customer_ids, s.local_start, s.zone,
       s.duration, s.rrule, s.lead, s.source, s.created_by, s.cancelled_at,
       coalesce(array_agg(k.starts_at ORDER BY k.starts_at)
                FILTER (WHERE k.starts_at IS NOT NULL), '{}')
FROM maintenance_series AS s
LEFT JOIN maintenance_series_skips AS k ON k.series_id = s.id
GROUP BY s.id
ORDER BY s.id
