-- Notifications: an outbox of events and one delivery row per event and route.
--
-- An event is written in the same transaction as the state change that caused it (a
-- link's status rewrite, say), under an id that the same happening always gets again, so
-- a re-derivation or a second evaluator writes nothing twice. The dispatcher (notify/)
-- turns each event into deliveries for the routes that take it, then delivers them at
-- least once; receivers de-duplicate by the event id they are sent.
CREATE TABLE events (
    id          text        PRIMARY KEY,
    kind        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    customer_id text        NULL,  -- whose event it is; NULL: about the monitor, for ops only
    link_id     text        NULL,
    payload     jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    routed_at   timestamptz NULL   -- when its deliveries were created
);
CREATE INDEX events_unrouted_idx ON events (created_at) WHERE routed_at IS NULL;
CREATE INDEX events_link_idx ON events (link_id, kind, occurred_at);
CREATE INDEX events_occurred_idx ON events (occurred_at);

CREATE TABLE deliveries (
    event_id        text        NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    route_id        text        NOT NULL,
    channel_id      text        NOT NULL,
    status          text        NOT NULL
                    CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    attempts        integer     NOT NULL DEFAULT 0,
    -- When it is next due; while a dispatcher holds it, the end of that dispatcher's
    -- lease, so a delivery a killed process was sending is taken up again afterwards.
    next_attempt_at timestamptz NOT NULL,
    last_error      text        NULL,
    note            text        NULL,  -- why it was suppressed
    sent_at         timestamptz NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (event_id, route_id)
);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_status_idx ON deliveries (status, updated_at);

-- The links whose latest known status is DOWN and whose outage was announced: the
-- state that turns "the latest status changed" into exactly one down and one recovery.
CREATE TABLE link_alerts (
    link_id    text        PRIMARY KEY,
    down_since timestamptz NOT NULL
);
