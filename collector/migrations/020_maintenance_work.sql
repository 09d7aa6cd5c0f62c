-- Maintenance as staff run it from the portal and the API. A window gets the reference
-- staff give it (a ticket or change number), the impact they expect (the BCOP maintnote
-- values providers' tools read), and a sequence that counts its reschedules: each one is
-- a new announcement, which calendars and mail clients recognise by the higher number.
ALTER TABLE maintenance_windows
    ADD COLUMN IF NOT EXISTS reference text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS impact text NOT NULL DEFAULT 'OUTAGE'
        CHECK (impact IN ('NO-IMPACT', 'REDUCED-REDUNDANCY', 'DEGRADED', 'OUTAGE')),
    ADD COLUMN IF NOT EXISTS sequence integer NOT NULL DEFAULT 0 CHECK (sequence >= 0);

-- Numbers for the ids of windows created in the portal ("mw-17"); never reused.
CREATE SEQUENCE IF NOT EXISTS maintenance_window_number;

-- What was done to each window and by whom: created, rescheduled (from what to what),
-- cancelled. Shown on the window's page. Window ids are never reused, and the rows
-- outlive nothing they describe, so no foreign key; append-only like work_log.
-- A plain table: it works the same on TimescaleDB.
CREATE TABLE maintenance_history (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    window_id          text        NOT NULL,
    at                 timestamptz NOT NULL,
    actor              text        NOT NULL CHECK (actor <> ''),
    action             text        NOT NULL CHECK (action IN ('created', 'rescheduled', 'cancelled')),
    starts_at          timestamptz NOT NULL,  -- the window as the action left it
    ends_at            timestamptz NOT NULL,
    previous_starts_at timestamptz NULL,      -- a reschedule: what it was before
    previous_ends_at   timestamptz NULL,
    sequence           integer     NOT NULL,
    note               text        NOT NULL DEFAULT ''
);

CREATE INDEX maintenance_history_window_idx ON maintenance_history (window_id, at, id);

CREATE FUNCTION maintenance_history_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'maintenance history is append-only: entry % cannot be changed', OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER maintenance_history_guard
    BEFORE UPDATE OR DELETE ON maintenance_history
    FOR EACH ROW EXECUTE FUNCTION maintenance_history_guard();
