-- A procedure since TimescaleDB 2.18 (it replaced add_compression_policy); the job it
-- makes is still named policy_compression, with the interval under compress_after.
CALL add_columnstore_policy('samples', after => %(compress_after)s::interval, if_not_exists => true)
