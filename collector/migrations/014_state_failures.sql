-- Probes whose status intervals cannot be derived (collector/states.py). A stored sample
-- that the derivation fails on (one at the end of year 9999, stored by an import that
-- took it at its word) must not stop Linkwatch: the deriver leaves that probe's link
-- alone, derives every other link, and records the failure here, where
-- `linkwatch db stats` (another process) and the NOC page find it. The row goes as soon
-- as the probe derives again: after the sample is deleted, or corrected with
-- `linkwatch import samples --replace`.
CREATE TABLE state_failures (
    link_id        text        NOT NULL,
    probe_id       text        NOT NULL,
    failing_since  timestamptz NOT NULL DEFAULT now(),
    last_failed_at timestamptz NOT NULL DEFAULT now(),
    error          text        NOT NULL,
    PRIMARY KEY (link_id, probe_id)
);
