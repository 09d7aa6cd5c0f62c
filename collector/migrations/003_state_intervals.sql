-- Status intervals derived from the samples (collector/states.py), per probe and per link.
--
-- Each probe's rows tile time without gaps or overlaps from its first sample on: adjacent
-- rows differ in status, and the last row is the open UNKNOWN that follows the last
-- sample's stale_after (ends_at NULL), so the rows are right "as of now" without a clock.
-- A row's error is that of the sample that began it: for an outage, its first down sample.
-- The rows are a cache of a pure function of the samples: `linkwatch db rebuild-states`
-- recomputes any range of them.
CREATE TABLE probe_states (
    link_id   text        NOT NULL,
    probe_id  text        NOT NULL,
    status    text        NOT NULL CHECK (status IN ('up', 'degraded', 'down', 'unknown')),
    starts_at timestamptz NOT NULL,
    ends_at   timestamptz NULL,
    error     text        NULL,
    PRIMARY KEY (link_id, probe_id, starts_at),
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);

-- Rows never overlap, so "intervals overlapping [a, b)" is a range of the primary key: from
-- the last row starting at or before a (one backward step) up to b. This index serves
-- retention, which deletes by ends_at, and "what ended since".
CREATE INDEX probe_states_ends_at_idx ON probe_states (link_id, ends_at);
-- One open interval per probe; also finds it without a scan.
CREATE UNIQUE INDEX probe_states_open_idx ON probe_states (link_id, probe_id)
    WHERE ends_at IS NULL;
-- Outages are few among the intervals: the incidents view finds them through these.
CREATE INDEX probe_states_down_idx ON probe_states (link_id, starts_at) WHERE status = 'down';

-- The link's status from its availability probes, merged the same way.
CREATE TABLE link_states (
    link_id   text        NOT NULL,
    status    text        NOT NULL CHECK (status IN ('up', 'degraded', 'down', 'unknown')),
    starts_at timestamptz NOT NULL,
    ends_at   timestamptz NULL,
    PRIMARY KEY (link_id, starts_at),
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);

CREATE INDEX link_states_ends_at_idx ON link_states (link_id, ends_at);
CREATE UNIQUE INDEX link_states_open_idx ON link_states (link_id) WHERE ends_at IS NULL;
CREATE INDEX link_states_down_idx ON link_states (link_id, starts_at) WHERE status = 'down';

-- The newest sample each probe's stored intervals include: the start-up catch-up derives
-- what came after it, and the current-status query trusts stored intervals only when they
-- include every sample it read.
CREATE TABLE state_progress (
    link_id         text        NOT NULL,
    probe_id        text        NOT NULL,
    derived_through timestamptz NOT NULL,
    PRIMARY KEY (link_id, probe_id)
);

-- One row per link outage (a DOWN link interval), with the probes that saw it: for each
-- probe DOWN during it, the start of its first such interval and that interval's first
-- error, ordered by when the probe saw it. An outage is running when a probe's last
-- sample is a confirmed down: then its end is not known yet (ends_at and duration are
-- NULL) and seen_until is when its data would go stale. Nothing here reads a clock.
CREATE VIEW incidents AS
SELECT d.link_id,
       d.starts_at,
       CASE WHEN r.running THEN NULL ELSE d.ends_at END AS ends_at,
       d.ends_at AS seen_until,
       r.running,
       CASE WHEN r.running THEN NULL ELSE d.ends_at - d.starts_at END AS duration,
       COALESCE(p.probe_ids, '{}') AS probe_ids,
       COALESCE(p.probe_starts, '{}') AS probe_starts,
       COALESCE(p.errors, '{}') AS errors
FROM link_states AS d
CROSS JOIN LATERAL (
    SELECT d.ends_at IS NULL OR EXISTS (
        SELECT FROM probe_states AS pd
        JOIN probe_states AS tail
          ON tail.link_id = pd.link_id
         AND tail.probe_id = pd.probe_id
         AND tail.ends_at IS NULL
         AND tail.starts_at = pd.ends_at
        WHERE pd.link_id = d.link_id AND pd.status = 'down' AND pd.ends_at = d.ends_at
    ) AS running
) AS r
LEFT JOIN LATERAL (
    SELECT array_agg(f.probe_id ORDER BY f.starts_at, f.probe_id) AS probe_ids,
           array_agg(f.starts_at ORDER BY f.starts_at, f.probe_id) AS probe_starts,
           array_agg(f.error ORDER BY f.starts_at, f.probe_id) AS errors
    FROM (
        SELECT DISTINCT ON (ps.probe_id) ps.probe_id, ps.starts_at, ps.error
        FROM probe_states AS ps
        WHERE ps.link_id = d.link_id
          AND ps.status = 'down'
          AND (d.ends_at IS NULL OR ps.starts_at < d.ends_at)
          AND (ps.ends_at IS NULL OR ps.ends_at > d.starts_at)
        ORDER BY ps.probe_id, ps.starts_at
    ) AS f
) AS p ON true
WHERE d.status = 'down';
