SELECT max(observed_at) FROM samples
