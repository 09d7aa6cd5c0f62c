SELECT remove_compression_policy('samples', if_exists => true)
