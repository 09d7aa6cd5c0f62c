-- Outage time attributed to the customer (CPE powered off, the customer's own work): staff
-- say which part of a link's outage the customer caused, and why. Whether such time is
-- excluded from a contract's availability is the contract's `customer_caused` term.
--
-- A row is its own audit record: who attributed what, when and why, and, once disputed,
-- who withdrew it, when and why. Nothing is deleted and nothing but the withdrawal is
-- ever set after the insert (the trigger below refuses it whatever the client), so a
-- withdrawn attribution stays in the history as it was. A plain table: it works the
-- same on TimescaleDB.
CREATE TABLE outage_attributions (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    link_id          text        NOT NULL,
    outage_start     timestamptz NOT NULL,  -- the outage it was made on, as it was then
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    reason           text        NOT NULL CHECK (btrim(reason) <> ''),
    created_by       text        NOT NULL CHECK (created_by <> ''),
    created_at       timestamptz NOT NULL,
    withdrawn_by     text        NULL CHECK (withdrawn_by <> ''),
    withdrawn_at     timestamptz NULL,
    withdrawn_reason text        NULL CHECK (btrim(withdrawn_reason) <> ''),
    CHECK (ends_at > starts_at),
    CHECK (starts_at >= outage_start),
    -- A withdrawal carries who, when and why, all three or none.
    CHECK ((withdrawn_by IS NULL) = (withdrawn_at IS NULL)),
    CHECK ((withdrawn_by IS NULL) = (withdrawn_reason IS NULL))
);

CREATE INDEX outage_attributions_link_idx ON outage_attributions (link_id, starts_at);

CREATE FUNCTION outage_attributions_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'outage attribution % cannot be deleted: withdraw it instead', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF OLD.withdrawn_at IS NOT NULL THEN
        RAISE EXCEPTION 'outage attribution % was withdrawn and never changes again', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF (to_jsonb(NEW) - ARRAY['withdrawn_by', 'withdrawn_at', 'withdrawn_reason'])
       IS DISTINCT FROM
       (to_jsonb(OLD) - ARRAY['withdrawn_by', 'withdrawn_at', 'withdrawn_reason']) THEN
        RAISE EXCEPTION 'outage attribution %: only its withdrawal may be recorded', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER outage_attributions_guard
    BEFORE UPDATE OR DELETE ON outage_attributions
    FOR EACH ROW EXECUTE FUNCTION outage_attributions_guard();
