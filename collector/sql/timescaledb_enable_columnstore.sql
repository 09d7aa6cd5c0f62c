-- Segmenting by probe keeps one probe's samples together, which is how they are read.
-- The TimescaleDB 2.18 names for what timescaledb.compress, compress_segmentby and
-- compress_orderby set before; the settings themselves are the same ones.
ALTER TABLE samples SET (
    timescaledb.enable_columnstore,
    timescaledb.segmentby = 'link_id, probe_id',
    timescaledb.orderby = 'observed_at DESC'
)
