-- Stores each sample once: already stored samples, and repeats within the batch (the
-- first one copied wins), are skipped. The row count is the number newly stored.
-- {columns} is collector.writer.SAMPLE_COLUMNS, composed with psycopg.sql.Identifier.
INSERT INTO samples ({columns})
SELECT {columns} FROM samples_incoming
ON CONFLICT DO NOTHING
