SELECT remove_continuous_aggregate_policy(%(view)s::regclass, if_exists => true)
