-- New figures for an open or closed row (or a closed adjustment withdrawn with its last
-- figures); a settled row is left as it is (and the trigger would refuse it anyway).
UPDATE ledger SET
    status = %(status)s,
    customer_id = %(customer_id)s,
    window_start = %(window_start)s,
    window_end = %(window_end)s,
    timezone = %(timezone)s,
    measured_until = %(measured_until)s,
    closes_at = %(closes_at)s,
    window_s = %(window_s)s,
    excluded_s = %(excluded_s)s,
    unknown_s = %(unknown_s)s,
    down_s = %(down_s)s,
    eligible_s = %(eligible_s)s,
    coverage_pct = %(coverage_pct)s,
    availability_pct = %(availability_pct)s,
    target_pct = %(target_pct)s,
    met = %(met)s,
    budget_s = %(budget_s)s,
    budget_used_pct = %(budget_used_pct)s,
    incidents = %(incidents)s,
    credit_steps = %(credit_steps)s,
    credit_pct = %(credit_pct)s,
    credit_amount = %(credit_amount)s,
    currency = %(currency)s,
    extra_figures = %(extra_figures)s,
    amount = %(amount)s,
    reason = %(reason)s,
    review_reason = %(review_reason)s,
    computed_at = %(computed_at)s
WHERE id = %(id)s AND status IN ('open', 'closed')
RETURNING *
