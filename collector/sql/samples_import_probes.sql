-- What the file holds per probe: its first and last sample and how many rows.
SELECT link_id, probe_id, min(observed_at), max(observed_at), count(*)
FROM samples_import
GROUP BY link_id, probe_id
ORDER BY link_id, probe_id
