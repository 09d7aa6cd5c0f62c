-- The tables in Linkwatch's schema with sizes and the planner's row estimate (reltuples;
-- -1 before the table's first ANALYZE). pg_table_size includes TOAST. A hypertable
-- appears here as its empty parent table; its figures come from stats_timescaledb.sql.
SELECT c.relname,
       n.nspname,
       c.reltuples::bigint,
       pg_table_size(c.oid),
       pg_indexes_size(c.oid),
       pg_total_relation_size(c.oid)
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
ORDER BY c.relname
