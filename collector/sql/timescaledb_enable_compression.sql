-- Segmenting by probe keeps one probe's samples together, which is how they are read.
ALTER TABLE samples SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'link_id, probe_id',
    timescaledb.compress_orderby = 'observed_at DESC'
)
