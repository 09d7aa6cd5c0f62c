-- The billing desk's ledger: one page of the rows that pass every filter given (a NULL
-- filter passes everything), newest windows first with each adjustment after the row it
-- adjusts, and the count and sum of every matching row per currency and status, which
-- come with the first row (or alone, on a NULL row, when the page is empty). Sums are
-- text so that no float stands between the database and Decimal.
WITH matching AS (
    SELECT l.*
    FROM ledger AS l
    WHERE (%(windows)s::text[] IS NULL OR l.window_label = ANY(%(windows)s::text[]))
      AND (%(customer)s::text IS NULL OR l.customer_id = %(customer)s::text)
      AND (%(statuses)s::text[] IS NULL OR l.status = ANY(%(statuses)s::text[]))
      AND (%(kind)s::text IS NULL OR l.kind = %(kind)s::text)
      AND (%(ended_after)s::timestamptz IS NULL OR l.window_end > %(ended_after)s::timestamptz)
      AND (%(ids)s::bigint[] IS NULL OR l.id = ANY(%(ids)s::bigint[]))
      AND (%(family)s::bigint IS NULL OR %(family)s::bigint IN (l.id, l.parent_id))
      AND (%(needs_review)s::boolean IS NULL
           OR (l.review_reason IS NOT NULL) = %(needs_review)s::boolean)
), totals AS (
    SELECT coalesce(
        jsonb_agg(
            jsonb_build_object(
                'currency', t.currency, 'status', t.status, 'rows', t.rows,
                'amount', t.amount::text
            )
            ORDER BY t.currency, t.status
        ),
        '[]'::jsonb
    ) AS totals
    FROM (
        SELECT m.currency, m.status, count(*) AS rows, sum(m.amount) AS amount
        FROM matching AS m
        GROUP BY m.currency, m.status
    ) AS t
)
SELECT totals.totals, page.*
FROM totals
LEFT JOIN LATERAL (
    SELECT m.*
    FROM matching AS m
    ORDER BY m.window_start DESC, m.contract_id, m.subject_id, coalesce(m.parent_id, m.id), m.id
    LIMIT %(limit)s OFFSET %(offset)s
) AS page ON true
