SELECT add_retention_policy('samples', %(drop_after)s::interval, if_not_exists => true)
