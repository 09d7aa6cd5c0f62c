-- Probe agents (`linkwatch agent`): processes at a site that only probe and store their
-- samples here. Each holds a lease on its row by heartbeating (collector/agents.py); the
-- live agents of a site share its links by rendezvous hashing, so no assignment is
-- written anywhere. The other columns are what operations see in `db stats`.
CREATE TABLE agents (
    id               text        PRIMARY KEY,  -- '<site>/<name>'
    site_id          text        NOT NULL,
    host             text        NOT NULL,
    pid              integer     NOT NULL,
    version          text        NOT NULL,
    -- The database role that wrote the row: an agent's role may change only its own
    -- rows (the policies below).
    db_role          text        NOT NULL DEFAULT current_user,
    started_at       timestamptz NOT NULL,
    heartbeat_at     timestamptz NOT NULL,
    stopped_at       timestamptz NULL,
    spool_bytes      bigint      NOT NULL DEFAULT 0,
    queued           bigint      NOT NULL DEFAULT 0,  -- samples waiting in its spool
    blind_since      timestamptz NULL,
    canaries_failing integer     NOT NULL DEFAULT 0,
    last_sample_at   timestamptz NULL
);

CREATE INDEX agents_site_idx ON agents (site_id);

-- Row-level security binds a row to the database role that wrote it: every agent may
-- read every row (it needs its site's live agents to know its share of the links), but
-- may insert and update only rows whose db_role is its own role. The table's owner (the
-- central process, which runs the migrations) is not subject to these policies.
ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
CREATE POLICY agents_read ON agents FOR SELECT USING (true);
CREATE POLICY agents_insert_own ON agents FOR INSERT WITH CHECK (db_role = current_user);
CREATE POLICY agents_update_own ON agents FOR UPDATE
    USING (db_role = current_user) WITH CHECK (db_role = current_user);

-- Samples stored by agents and not yet derived into link states: per measurement, the
-- earliest sample time since the central process last claimed the row. Agents upsert
-- (earliest = LEAST) after each stored batch; `linkwatch run` deletes the rows it
-- claims and derives from `earliest` on.
CREATE TABLE samples_announced (
    link_id  text        NOT NULL,
    probe_id text        NOT NULL,
    earliest timestamptz NOT NULL,
    PRIMARY KEY (link_id, probe_id)
);
