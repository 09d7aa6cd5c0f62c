INSERT INTO outage_attributions
    (link_id, outage_start, starts_at, ends_at, reason, created_by, created_at)
VALUES
    (%(link_id)s, %(outage_start)s, %(starts_at)s, %(ends_at)s, %(reason)s, %(created_by)s,
     %(created_at)s)
RETURNING id, link_id, outage_start, starts_at, ends_at, reason, created_by, created_at,
          withdrawn_by, withdrawn_at, withdrawn_reason
