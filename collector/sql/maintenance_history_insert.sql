INSERT INTO maintenance_history (
    window_id, at, actor, action, starts_at, ends_at, previous_starts_at, previous_ends_at,
    sequence, note
) VALUES (
    %(window_id)s, %(at)s, %(actor)s, %(action)s, %(starts_at)s, %(ends_at)s,
    %(previous_starts_at)s, %(previous_ends_at)s, %(sequence)s, %(note)s
)
