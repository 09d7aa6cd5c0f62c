INSERT INTO events (id, kind, occurred_at, customer_id, link_id, payload)
SELECT *
FROM unnest(
    %(ids)s::text[], %(kinds)s::text[], %(occurred_at)s::timestamptz[],
    %(customer_ids)s::text[], %(link_ids)s::text[], %(payloads)s::jsonb[]
)
ON CONFLICT (id) DO NOTHING
