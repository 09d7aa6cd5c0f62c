-- Whether samples has the columnstore enabled, and its segmentby and orderby as the view
-- spells them ('link_id,probe_id', 'observed_at DESC'); NULLs where they are not set.
SELECT h.compression_enabled, s.segmentby, s.orderby
FROM timescaledb_information.hypertables AS h
JOIN pg_namespace AS n ON n.nspname = h.hypertable_schema
JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = h.hypertable_name
LEFT JOIN timescaledb_information.hypertable_columnstore_settings AS s ON s.hypertable = c.oid
WHERE h.hypertable_schema = current_schema() AND h.hypertable_name = 'samples'
