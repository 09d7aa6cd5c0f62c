-- When the monitor's site was blind: its canaries failed (collector/site_guard.py), so
-- what its probes saw then was stored as unknown, not down. One row per blind span; the
-- open one (ends_at NULL) is the present. For operations: /noc, `db stats`, the
-- site-blind notification.
CREATE TABLE site_blind (
    site_id   text        NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at   timestamptz NULL,
    reason    text        NOT NULL,
    PRIMARY KEY (site_id, starts_at),
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);

CREATE UNIQUE INDEX site_blind_open_idx ON site_blind (site_id) WHERE ends_at IS NULL;
