-- Incidents as staff tell them: one or more outages of a shared failure (a fibre cut, a
-- PoP's power), the updates staff post on them for the customers concerned, and the
-- cause the last one closes the incident with. An outage is named as the incidents view
-- lists it (link, start) and belongs to one incident at most.
--
-- Updates are what customers were told: never changed or deleted (the trigger below
-- refuses it whatever the client). An incident row changes once, when it is closed.
-- Plain tables: they work the same on TimescaleDB.
CREATE TABLE incident_reports (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title          text        NOT NULL CHECK (btrim(title) <> ''),
    opened_by      text        NOT NULL CHECK (opened_by <> ''),
    opened_at      timestamptz NOT NULL,
    closed_by      text        NULL CHECK (closed_by <> ''),
    closed_at      timestamptz NULL,
    cause_category text        NULL CHECK (cause_category ~ '^[a-z][a-z-]*$'),
    cause          text        NULL CHECK (btrim(cause) <> ''),
    -- Closing carries who, when and the cause, all or none.
    CHECK ((closed_by IS NULL) = (closed_at IS NULL)),
    CHECK ((closed_by IS NULL) = (cause_category IS NULL)),
    CHECK ((closed_by IS NULL) = (cause IS NULL))
);

CREATE TABLE incident_report_outages (
    incident_id  bigint      NOT NULL REFERENCES incident_reports (id),
    link_id      text        NOT NULL,
    outage_start timestamptz NOT NULL,
    added_by     text        NOT NULL CHECK (added_by <> ''),
    added_at     timestamptz NOT NULL,
    PRIMARY KEY (link_id, outage_start)  -- one incident per outage
);

CREATE INDEX incident_report_outages_incident_idx ON incident_report_outages (incident_id);

CREATE TABLE incident_report_updates (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint      NOT NULL REFERENCES incident_reports (id),
    posted_by   text        NOT NULL CHECK (posted_by <> ''),
    posted_at   timestamptz NOT NULL,
    body        text        NOT NULL CHECK (btrim(body) <> ''),
    link_ids    text[]      NOT NULL,  -- the links the incident covered when it was posted
    closes      boolean     NOT NULL DEFAULT false
);

CREATE INDEX incident_report_updates_incident_idx
    ON incident_report_updates (incident_id, posted_at);

CREATE FUNCTION incident_report_updates_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'incident update % was sent to customers and never changes', OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER incident_report_updates_guard
    BEFORE UPDATE OR DELETE ON incident_report_updates
    FOR EACH ROW EXECUTE FUNCTION incident_report_updates_guard();
