-- The pre-2.13 signature, still accepted by every 2.x release; migrate_data converts a
-- samples table that already holds rows from a start without the extension.
SELECT create_hypertable(
    'samples', 'observed_at',
    chunk_time_interval => %(chunk_interval)s::interval,
    if_not_exists => true,
    migrate_data => true
)
