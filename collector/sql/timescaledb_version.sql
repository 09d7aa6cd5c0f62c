-- The timescaledb version installed in this database (NULL: not installed) and the one
-- CREATE EXTENSION would install.
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),
       (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb')
