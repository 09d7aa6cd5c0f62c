-- Hypertables in Linkwatch's schema, then the continuous aggregates (sized by their
-- materialization hypertables), with chunk counts and compression figures.
-- approximate_row_count sums the chunks' statistics: 0 for chunks not yet analyzed.
-- The third and fourth columns name the table whose rows are counted: for an aggregate
-- its materialization hypertable, as counting the view would aggregate every raw sample
-- past its watermark.
SELECT h.hypertable_name,
       'hypertable',
       h.hypertable_schema,
       h.hypertable_name,
       approximate_row_count(c.oid),
       d.table_bytes + d.toast_bytes,
       d.index_bytes,
       d.total_bytes,
       h.num_chunks,
       cs.number_compressed_chunks,
       cs.before_compression_total_bytes,
       cs.after_compression_total_bytes
FROM timescaledb_information.hypertables AS h
JOIN pg_namespace AS n ON n.nspname = h.hypertable_schema
JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = h.hypertable_name
CROSS JOIN LATERAL hypertable_detailed_size(c.oid) AS d
LEFT JOIN LATERAL hypertable_columnstore_stats(c.oid) AS cs ON true
WHERE h.hypertable_schema = current_schema()
UNION ALL
SELECT ca.view_name,
       'continuous aggregate',
       ca.materialization_hypertable_schema,
       ca.materialization_hypertable_name,
       approximate_row_count(m.oid),
       d.table_bytes + d.toast_bytes,
       d.index_bytes,
       d.total_bytes,
       (
           SELECT count(*)::int FROM timescaledb_information.chunks AS ch
           WHERE ch.hypertable_schema = ca.materialization_hypertable_schema
             AND ch.hypertable_name = ca.materialization_hypertable_name
       ),
       cs.number_compressed_chunks,
       cs.before_compression_total_bytes,
       cs.after_compression_total_bytes
FROM timescaledb_information.continuous_aggregates AS ca
JOIN pg_namespace AS n ON n.nspname = ca.view_schema
JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = ca.view_name
JOIN pg_namespace AS mn ON mn.nspname = ca.materialization_hypertable_schema
JOIN pg_class AS m
    ON m.relnamespace = mn.oid AND m.relname = ca.materialization_hypertable_name
CROSS JOIN LATERAL hypertable_detailed_size(c.oid) AS d
LEFT JOIN LATERAL hypertable_columnstore_stats(c.oid) AS cs ON true
WHERE ca.view_schema = current_schema()
ORDER BY 1
