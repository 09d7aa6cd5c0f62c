SELECT link_id, down_since FROM link_alerts WHERE link_id = ANY(%(link_ids)s::text[])
