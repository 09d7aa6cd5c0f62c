SELECT add_retention_policy('samples', %(retention)s::interval, if_not_exists => true)
