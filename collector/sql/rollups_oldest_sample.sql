-- The oldest stored sample (an index scan on samples_observed_at_idx).
SELECT min(observed_at) FROM samples
