UPDATE events SET routed_at = %(now)s WHERE id = ANY(%(ids)s::text[])
