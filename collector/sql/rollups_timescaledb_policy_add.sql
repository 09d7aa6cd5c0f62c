SELECT add_continuous_aggregate_policy(
    %(view)s::regclass,
    start_offset => %(start_offset)s::interval,
    end_offset => %(end_offset)s::interval,
    schedule_interval => %(schedule_interval)s::interval,
    if_not_exists => true
)
