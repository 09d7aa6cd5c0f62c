-- {columns} is collector.writer.SAMPLE_COLUMNS, composed with psycopg.sql.Identifier.
COPY samples_incoming ({columns}) FROM STDIN (FORMAT BINARY)
