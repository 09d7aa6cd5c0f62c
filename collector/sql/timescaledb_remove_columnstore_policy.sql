-- Removes the job add_columnstore_policy made, or one the older add_compression_policy
-- made: they are the same policy_compression job.
CALL remove_columnstore_policy('samples', if_exists => true)
