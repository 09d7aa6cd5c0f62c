-- The credit ledger (sla/ledger.py, 005_ledger.sql) learns two things.
--
-- Review: a row whose coverage is under the review floor (ledger.review_coverage_below)
-- or under the contract's min_coverage carries `review_reason`, says why a person must
-- look before approving (under min_coverage no credit is computed automatically), and is
-- approved only with the approver's `approval_note`. Rows written before keep NULL: they
-- were not flagged.
--
-- Withdrawn: an adjustment awaiting approval whose difference a later recomputation
-- brings back to zero no longer asks anyone to approve it. The ledger keeps every row, so
-- it moves closed -> withdrawn (final, crediting nothing) instead of staying as a +0.00
-- to approve; a later change of the credit is a new adjustment row.
ALTER TABLE ledger
    ADD COLUMN review_reason text NULL CHECK (review_reason IS NULL OR review_reason <> ''),
    ADD COLUMN approval_note text NULL CHECK (approval_note IS NULL OR approval_note <> '');

ALTER TABLE ledger DROP CONSTRAINT ledger_status_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_status_check
    CHECK (status IN ('open', 'closed', 'approved', 'applied', 'withdrawn'));
ALTER TABLE ledger ADD CONSTRAINT ledger_withdrawn_check
    CHECK (status <> 'withdrawn' OR (kind = 'adjustment' AND amount = 0));
ALTER TABLE ledger ADD CONSTRAINT ledger_review_note_check
    CHECK (review_reason IS NULL OR approved_by IS NULL OR approval_note IS NOT NULL);
ALTER TABLE ledger ADD CONSTRAINT ledger_note_check
    CHECK (approval_note IS NULL OR approved_by IS NOT NULL);

ALTER TABLE ledger_audit DROP CONSTRAINT ledger_audit_action_check;
ALTER TABLE ledger_audit ADD CONSTRAINT ledger_audit_action_check
    CHECK (action IN ('created', 'recomputed', 'closed', 'approved', 'applied', 'adjusted',
                      'withdrawn'));
ALTER TABLE ledger_audit DROP CONSTRAINT ledger_audit_from_status_check;
ALTER TABLE ledger_audit ADD CONSTRAINT ledger_audit_from_status_check
    CHECK (from_status IN ('open', 'closed', 'approved', 'applied', 'withdrawn'));
ALTER TABLE ledger_audit DROP CONSTRAINT ledger_audit_to_status_check;
ALTER TABLE ledger_audit ADD CONSTRAINT ledger_audit_to_status_check
    CHECK (to_status IN ('open', 'closed', 'approved', 'applied', 'withdrawn'));

-- The flagged rows, for the billing desk's filter.
CREATE INDEX ledger_review_idx ON ledger (window_start) WHERE review_reason IS NOT NULL;

-- The lifecycle of 005 plus: a closed adjustment may be withdrawn (with its last
-- figures), a withdrawn row is final, and approving may also set the approval note.
CREATE OR REPLACE FUNCTION ledger_guard() RETURNS trigger
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

    IF OLD.status IN ('open', 'closed') AND NEW.status IN ('open', 'closed', 'withdrawn') THEN
        IF OLD.status = 'closed' AND NEW.status = 'open' THEN
            RAISE EXCEPTION 'ledger row % is closed and cannot reopen', OLD.id
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.status = 'withdrawn' AND (OLD.status <> 'closed' OR OLD.kind <> 'adjustment') THEN
            RAISE EXCEPTION 'ledger row % is % %: only a closed adjustment can be withdrawn',
                OLD.id, OLD.status, OLD.kind
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
        may_change := ARRAY['status', 'approved_by', 'approved_at', 'approval_note'];
    ELSIF OLD.status = 'approved' AND NEW.status = 'applied' THEN
        may_change := ARRAY['status', 'applied_by', 'applied_at', 'invoice_ref'];
    ELSE
        RAISE EXCEPTION 'ledger row % is % and cannot become %: approved, applied and '
            'withdrawn rows never change (a correction is a new adjustment row)',
            OLD.id, OLD.status, NEW.status
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
