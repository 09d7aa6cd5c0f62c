-- A per-connection staging table, emptied at every commit: COPY cannot skip duplicates,
-- the INSERT ... ON CONFLICT that follows can. Created once per pooled connection.
-- {column_defs} is collector.writer.SAMPLE_COLUMNS with their types: spelled out rather
-- than `LIKE samples`, which needs SELECT on samples, a right an agent's role that only
-- inserts samples does not have (README, "Roles and grants").
CREATE TEMPORARY TABLE IF NOT EXISTS samples_incoming ({column_defs}) ON COMMIT DELETE ROWS
