SELECT at, actor, action, starts_at, ends_at, previous_starts_at, previous_ends_at, sequence, note
FROM maintenance_history
WHERE window_id = %(window_id)s
ORDER BY at, id
