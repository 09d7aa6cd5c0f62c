SELECT current_setting('server_version'),
       pg_database_size(current_database()),
       (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb')
