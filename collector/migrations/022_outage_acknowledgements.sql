-- Outages acknowledged by operations: someone has seen the outage and is on it. An outage
-- is named by its link and its confirmed start, as the link's incidents list it; it is
-- acknowledged once (the primary key), by whom, when, with an optional note. The time
-- to acknowledge (acknowledged_at - outage_start) is what escalation waits for and what
-- the operations report measures, so a row is never changed nor deleted (the trigger
-- below refuses it, whatever the client). The action is also in the operations trail.
-- A plain table: it works the same on TimescaleDB.
CREATE TABLE outage_acknowledgements (
    link_id          text        NOT NULL,
    outage_start     timestamptz NOT NULL,
    acknowledged_by  text        NOT NULL CHECK (acknowledged_by <> ''),
    acknowledged_at  timestamptz NOT NULL,
    note             text        NOT NULL DEFAULT '',
    PRIMARY KEY (link_id, outage_start),
    CHECK (acknowledged_at >= outage_start)
);

CREATE INDEX outage_acknowledgements_start_idx ON outage_acknowledgements (outage_start);

CREATE FUNCTION outage_acknowledgements_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the acknowledgement of % at % is kept as made: it cannot be changed',
        OLD.link_id, OLD.outage_start
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER outage_acknowledgements_guard
    BEFORE UPDATE OR DELETE ON outage_acknowledgements
    FOR EACH ROW EXECUTE FUNCTION outage_acknowledgements_guard();
