-- Which of these event ids are stored.
SELECT id FROM events WHERE id = ANY(%(ids)s::text[])
