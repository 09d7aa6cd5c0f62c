-- Fast path for new samples: straight into the table. A sample already stored makes it
-- fail whole (unique violation), and the batch is written through samples_incoming.
-- {columns} is collector.writer.SAMPLE_COLUMNS, composed with psycopg.sql.Identifier.
COPY samples ({columns}) FROM STDIN (FORMAT BINARY)
