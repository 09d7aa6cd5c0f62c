-- The dimension-builder signature (TimescaleDB 2.13 and later). migrate_data converts a
-- samples table that already holds rows from a start without the extension.
SELECT create_hypertable(
    'samples',
    by_range('observed_at', %(chunk_interval)s::interval),
    if_not_exists => true,
    migrate_data => true
)
