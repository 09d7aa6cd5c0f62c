-- Maintenance windows, one row per occurrence. Whether a window is excluded from an SLA
-- window depends on announced_at versus the contract's notice period, so it is required.
-- The scope is a set of links, a set of customers, everything (global), or a mix.
CREATE TABLE maintenance_windows (
    id           text        PRIMARY KEY,
    description  text        NOT NULL DEFAULT '',
    link_ids     text[]      NOT NULL DEFAULT '{}',
    customer_ids text[]      NOT NULL DEFAULT '{}',
    global       boolean     NOT NULL DEFAULT false,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    announced_at timestamptz NOT NULL,
    source       text        NOT NULL CHECK (source IN ('config', 'demo', 'portal')),
    CHECK (ends_at > starts_at),
    CHECK (global OR cardinality(link_ids) > 0 OR cardinality(customer_ids) > 0)
);

CREATE INDEX maintenance_windows_ends_at_idx ON maintenance_windows (ends_at);
