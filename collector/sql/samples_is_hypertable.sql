SELECT EXISTS (
    SELECT FROM timescaledb_information.hypertables
    WHERE hypertable_schema = current_schema() AND hypertable_name = 'samples'
)
