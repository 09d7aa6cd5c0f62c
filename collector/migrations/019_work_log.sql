-- The operations trail: what staff did outside the ledger (announce, reschedule or cancel
-- maintenance, acknowledge an outage, post an incident update, group outages), who did
-- it, when, about what, and whose links it concerned. Billing reads it beside the
-- ledger's audit trail, since such an action can matter to a credit (an announcement
-- time decides whether maintenance is excluded).
--
-- Append-only: the trigger below refuses any change or deletion, whatever the client.
-- A plain table: it works the same on TimescaleDB.
CREATE TABLE work_log (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    actor        text        NOT NULL CHECK (actor <> ''),
    action       text        NOT NULL CHECK (action ~ '^[a-z][a-z-]*$'),
    subject      text        NOT NULL CHECK (subject <> ''),  -- "maintenance:mw-7", ...
    link_ids     text[]      NOT NULL DEFAULT '{}',
    customer_ids text[]      NOT NULL DEFAULT '{}',
    detail       text        NOT NULL DEFAULT ''
);

CREATE INDEX work_log_at_idx ON work_log (at DESC, id DESC);
CREATE INDEX work_log_subject_idx ON work_log (subject, at);

CREATE FUNCTION work_log_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the operations trail is append-only: entry % cannot be changed', OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER work_log_guard
    BEFORE UPDATE OR DELETE ON work_log
    FOR EACH ROW EXECUTE FUNCTION work_log_guard();
