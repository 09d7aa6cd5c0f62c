-- A per-connection staging table, emptied at every commit: COPY cannot skip duplicates,
-- the INSERT ... ON CONFLICT that follows can. Created once per pooled connection.
CREATE TEMPORARY TABLE IF NOT EXISTS samples_incoming (LIKE samples) ON COMMIT DELETE ROWS
