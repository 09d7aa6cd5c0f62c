SELECT min(observed_at), max(observed_at) FROM samples
