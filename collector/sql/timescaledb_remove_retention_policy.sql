SELECT remove_retention_policy('samples', if_exists => true)
