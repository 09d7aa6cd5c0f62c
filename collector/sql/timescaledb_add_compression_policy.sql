SELECT add_compression_policy('samples', %(compress_after)s::interval, if_not_exists => true)
