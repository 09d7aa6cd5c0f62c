-- Recurring maintenance: a series (an RFC 5545 RRULE from a local start in a named time
-- zone) whose occurrences become maintenance_windows rows, source 'series', only when
-- each is announced (its start minus the series' lead time), with announced_at the
-- moment it was written: the notice period an occurrence gets is the one it really had.
-- Plain tables: they work the same on TimescaleDB.
ALTER TABLE maintenance_windows DROP CONSTRAINT IF EXISTS maintenance_windows_source_check;
ALTER TABLE maintenance_windows ADD CONSTRAINT maintenance_windows_source_check
    CHECK (source IN ('config', 'demo', 'portal', 'series'));

CREATE TABLE maintenance_series (
    id           text        PRIMARY KEY,
    description  text        NOT NULL DEFAULT '',
    reference    text        NOT NULL DEFAULT '',  -- a change ticket: CHG-1234
    link_ids     text[]      NOT NULL DEFAULT '{}',
    customer_ids text[]      NOT NULL DEFAULT '{}',
    global       boolean     NOT NULL DEFAULT false,
    local_start  timestamp   NOT NULL,  -- wall time in `zone`: the rule's DTSTART
    zone         text        NOT NULL,
    duration     interval    NOT NULL CHECK (duration > interval '0'),
    rrule        text        NOT NULL CHECK (rrule <> ''),
    lead         interval    NOT NULL CHECK (lead >= interval '0'),
    source       text        NOT NULL CHECK (source IN ('config', 'portal')),
    created_by   text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    -- From then on no occurrence is announced; those announced before stay as they are.
    cancelled_at timestamptz NULL,
    cancelled_by text        NULL,
    CHECK (global OR cardinality(link_ids) > 0 OR cardinality(customer_ids) > 0)
);

-- Occurrences not held (EXDATE): never announced, or withdrawn when already announced.
CREATE TABLE maintenance_series_skips (
    series_id  text        NOT NULL REFERENCES maintenance_series (id),
    starts_at  timestamptz NOT NULL,
    skipped_by text        NOT NULL,
    skipped_at timestamptz NOT NULL,
    reason     text        NOT NULL DEFAULT '',
    PRIMARY KEY (series_id, starts_at)
);
