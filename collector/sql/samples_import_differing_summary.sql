-- How many samples of the file differ from those stored, of which links, over which span.
SELECT count(*), coalesce(array_agg(DISTINCT link_id), '{}'), min(observed_at), max(observed_at)
FROM samples_import_differing
