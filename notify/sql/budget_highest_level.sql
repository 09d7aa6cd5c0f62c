SELECT max((payload ->> 'level')::int)
FROM events
WHERE kind = 'budget' AND payload ->> 'key' = %(key)s
