SELECT payload FROM events WHERE id = %(id)s
