-- The credit ledger (sla/ledger.py): one `window` row per contract, subject (a link id, or
-- "group:<contract>" for a redundant group) and window, plus `adjustment` rows that
-- correct a settled one. Rows move open -> closed -> approved -> applied, never back.
-- Open and closed rows are recomputed as data arrives; approved and applied rows never
-- change again: the constraints and the trigger below refuse it whatever the client,
-- so the rule holds for psql sessions and future code as much as for Linkwatch.
--
-- The figures are those of the SLA report record (sla/records.py) with the same names;
-- window_start/window_end are rendered in `timezone` (the customer's). Record fields
-- added after this table are kept in extra_figures. Money is numeric in the currency's
-- minor units; `amount` is what this row credits: the whole credit for a window row,
-- the difference to what was settled before for an adjustment.
CREATE TABLE ledger (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('window', 'adjustment')),
    parent_id        bigint      NULL REFERENCES ledger (id),
    status           text        NOT NULL
        CHECK (status IN ('open', 'closed', 'approved', 'applied')),
    contract_id      text        NOT NULL,
    customer_id      text        NOT NULL,
    subject_id       text        NOT NULL,
    window_label     text        NOT NULL,
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    timezone         text        NOT NULL,
    measured_until   timestamptz NOT NULL,
    closes_at        timestamptz NOT NULL,  -- window end + the contract's grace
    window_s         numeric     NOT NULL,
    excluded_s       numeric     NOT NULL,
    unknown_s        numeric     NOT NULL,
    down_s           numeric     NOT NULL,
    eligible_s       numeric     NOT NULL,
    coverage_pct     numeric     NOT NULL,
    availability_pct numeric     NULL,      -- NULL: nothing eligible ("n/a")
    target_pct       numeric     NOT NULL,
    met              boolean     NULL,
    budget_s         numeric     NOT NULL,
    budget_used_pct  numeric     NULL,
    incidents        integer     NOT NULL CHECK (incidents >= 0),
    credit_steps     integer     NOT NULL CHECK (credit_steps >= 0),
    credit_pct       numeric     NOT NULL CHECK (credit_pct >= 0),
    credit_amount    numeric     NOT NULL CHECK (credit_amount >= 0),
    currency         text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    extra_figures    jsonb       NOT NULL DEFAULT '{}',
    amount           numeric     NOT NULL,
    reason           text        NULL,
    created_by       text        NOT NULL CHECK (created_by <> ''),
    created_at       timestamptz NOT NULL,
    computed_at      timestamptz NOT NULL,
    approved_by      text        NULL,
    approved_at      timestamptz NULL,
    applied_by       text        NULL,
    applied_at       timestamptz NULL,
    invoice_ref      text        NULL,
    CHECK (window_end > window_start),
    CHECK (closes_at >= window_end),
    -- An adjustment corrects exactly one window row and says why; a window row credits
    -- exactly its computed credit.
    CHECK ((kind = 'window') = (parent_id IS NULL)),
    CHECK (kind = 'window' OR (reason IS NOT NULL AND reason <> '')),
    CHECK (kind = 'adjustment' OR amount = credit_amount),
    -- Who and when travel with each settled status, and only with it. The automatic
    -- actor never approves or applies: that is a billing user's decision.
    CHECK ((status IN ('approved', 'applied')) = (approved_by IS NOT NULL)),
    CHECK ((approved_by IS NULL) = (approved_at IS NULL)),
    CHECK ((status = 'applied') = (applied_by IS NOT NULL)),
    CHECK ((applied_by IS NULL) = (applied_at IS NULL)),
    CHECK ((applied_by IS NULL) = (invoice_ref IS NULL)),
    CHECK (approved_by IS NULL OR (approved_by <> '' AND approved_by <> 'system')),
    CHECK (applied_by IS NULL OR (applied_by <> '' AND applied_by <> 'system')),
    CHECK (invoice_ref IS NULL OR invoice_ref <> '')
);

CREATE UNIQUE INDEX ledger_window_key ON ledger (contract_id, subject_id, window_label)
    WHERE kind = 'window';
-- At most one unsettled adjustment per window row: later data recomputes it in place.
CREATE UNIQUE INDEX ledger_pending_adjustment_idx ON ledger (parent_id)
    WHERE kind = 'adjustment' AND status IN ('open', 'closed');
CREATE INDEX ledger_window_label_idx ON ledger (window_label);
CREATE INDEX ledger_customer_idx ON ledger (customer_id, window_start);
CREATE INDEX ledger_open_idx ON ledger (closes_at) WHERE status = 'open';

-- Who did what to which row, and when. Append-only.
CREATE TABLE ledger_audit (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ledger_id   bigint      NOT NULL REFERENCES ledger (id),
    at          timestamptz NOT NULL,
    actor       text        NOT NULL CHECK (actor <> ''),
    action      text        NOT NULL
        CHECK (action IN ('created', 'recomputed', 'closed', 'approved', 'applied', 'adjusted')),
    from_status text        NULL
        CHECK (from_status IN ('open', 'closed', 'approved', 'applied')),
    to_status   text        NOT NULL
        CHECK (to_status IN ('open', 'closed', 'approved', 'applied')),
    detail      text        NOT NULL
);

CREATE INDEX ledger_audit_ledger_idx ON ledger_audit (ledger_id, id);

-- The lifecycle, enforced where no client can skip it. New rows start open or closed
-- (an adjustment only under a settled window row); a row moves only forward; while open
-- or closed its figures may be recomputed; closing-to-approved may set only the approval,
-- approved-to-applied only the application; an applied row is final; nothing is deleted.
CREATE FUNCTION ledger_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    may_change text[];
    parent_status text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger row % (%) cannot be deleted: the ledger keeps every row',
            OLD.id, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;

    IF TG_OP = 'INSERT' THEN
        IF NEW.status NOT IN ('open', 'closed') THEN
            RAISE EXCEPTION 'a new ledger row starts open or closed, not %', NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.kind = 'adjustment' THEN
            SELECT p.status INTO parent_status
            FROM ledger AS p
            WHERE p.id = NEW.parent_id AND p.kind = 'window'
              AND p.contract_id = NEW.contract_id AND p.subject_id = NEW.subject_id
              AND p.window_label = NEW.window_label;
            IF parent_status IS NULL OR parent_status NOT IN ('approved', 'applied') THEN
                RAISE EXCEPTION 'an adjustment must correct an approved or applied window '
                    'row of the same contract, subject and window (parent %: %)',
                    NEW.parent_id, coalesce(parent_status, 'no such window row')
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
        RETURN NEW;
    END IF;

    IF OLD.status IN ('open', 'closed') AND NEW.status IN ('open', 'closed') THEN
        IF OLD.status = 'closed' AND NEW.status = 'open' THEN
            RAISE EXCEPTION 'ledger row % is closed and cannot reopen', OLD.id
                USING ERRCODE = 'check_violation';
        END IF;
        -- Figures may be recomputed; what the row is about may not.
        IF (NEW.id, NEW.kind, NEW.parent_id, NEW.contract_id, NEW.subject_id,
            NEW.window_label, NEW.created_by, NEW.created_at)
           IS DISTINCT FROM
           (OLD.id, OLD.kind, OLD.parent_id, OLD.contract_id, OLD.subject_id,
            OLD.window_label, OLD.created_by, OLD.created_at) THEN
            RAISE EXCEPTION 'ledger row %: what a row is about never changes', OLD.id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    ELSIF OLD.status = NEW.status THEN
        RAISE EXCEPTION 'ledger row % is %: its figures never change (a correction is a new '
            'adjustment row)', OLD.id, OLD.status
            USING ERRCODE = 'check_violation';
    ELSIF OLD.status = 'closed' AND NEW.status = 'approved' THEN
        may_change := ARRAY['status', 'approved_by', 'approved_at'];
    ELSIF OLD.status = 'approved' AND NEW.status = 'applied' THEN
        may_change := ARRAY['status', 'applied_by', 'applied_at', 'invoice_ref'];
    ELSE
        RAISE EXCEPTION 'ledger row % is % and cannot become %: approved and applied rows '
            'never change (a correction is a new adjustment row)', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    -- Compared as text so that even a change of a number's scale (25.00 -> 25.0) counts.
    IF ((to_jsonb(NEW) - may_change)::text) IS DISTINCT FROM ((to_jsonb(OLD) - may_change)::text)
    THEN
        RAISE EXCEPTION 'ledger row % is %: its figures never change (a correction is a new '
            'adjustment row)', OLD.id, OLD.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_guard
    BEFORE INSERT OR UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_guard();

CREATE FUNCTION ledger_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger audit log is append-only (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER ledger_audit_append_only
    BEFORE UPDATE OR DELETE ON ledger_audit
    FOR EACH ROW EXECUTE FUNCTION ledger_audit_append_only();
