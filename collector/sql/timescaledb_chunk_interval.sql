-- Applies to chunks created from now on; existing chunks keep their size.
SELECT set_chunk_time_interval('samples', %(chunk_interval)s::interval)
