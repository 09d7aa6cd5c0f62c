INSERT INTO ledger (
    kind, parent_id, status, contract_id, customer_id, subject_id, window_label,
    window_start, window_end, timezone, measured_until, closes_at,
    window_s, excluded_s, unknown_s, down_s, eligible_s, coverage_pct, availability_pct,
    target_pct, met, budget_s, budget_used_pct, incidents, credit_steps, credit_pct,
    credit_amount, currency, extra_figures, amount, reason, created_by, created_at,
    computed_at, review_reason
) VALUES (
    %(kind)s, %(parent_id)s, %(status)s, %(contract_id)s, %(customer_id)s, %(subject_id)s,
    %(window_label)s, %(window_start)s, %(window_end)s, %(timezone)s, %(measured_until)s,
    %(closes_at)s, %(window_s)s, %(excluded_s)s, %(unknown_s)s, %(down_s)s, %(eligible_s)s,
    %(coverage_pct)s, %(availability_pct)s, %(target_pct)s, %(met)s, %(budget_s)s,
    %(budget_used_pct)s, %(incidents)s, %(credit_steps)s, %(credit_pct)s, %(credit_amount)s,
    %(currency)s, %(extra_figures)s, %(amount)s, %(reason)s, %(created_by)s, %(created_at)s,
    %(computed_at)s, %(review_reason)s
)
RETURNING *
