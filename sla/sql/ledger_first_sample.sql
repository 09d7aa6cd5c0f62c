-- The oldest stored sample (an index scan on samples_observed_at_idx): no window before
-- it has anything to compute.
SELECT min(observed_at) FROM samples
