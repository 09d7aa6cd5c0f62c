"""Probe agents' leases, heartbeats and share of their site's links, kept in the
central database; and the announcements by which their samples get derived.

An agent (`linkwatch agent`) registers a row in `agents` and renews it every quarter of
the lease (`collector.agent_lease`). The live agents of a site are those whose heartbeat
is within the lease, by the database server's clock, and that have not stopped. Each
link of the site belongs to exactly one of them, by rendezvous hashing of (agent id,
link id) (`collector.assignment`); every agent recomputes its share at each heartbeat
from the live agents it reads, and hands it to its scheduler.

Why no central assignment is written: the assignment is a pure function of the set of
live agents, and that set is read from the rows each agent already writes to stay alive.
Every agent that reads the same rows computes the same owner for every link, so there is
no assignment table to keep consistent, no coordinator to elect, and nothing to clean up
after a crash: a killed agent's row simply stops being live when its lease runs out, and
a stopping agent (SIGTERM) sets `stopped_at`, so that its links move at the other
agents' next heartbeat instead of after the lease.

The overlap bound: agents do not read the rows at the same moment, so for a while two
agents may both think a link is theirs. A link moves only when the set of live agents
changes, and each agent sees the change at its next heartbeat, at most one heartbeat
period (lease / 4) later: that is the longest time in which both the old and the new
owner probe a moving link, while both reach the database. An agent that cannot reach it
keeps its last share (its spool holds the samples), and may overlap with the agents that
took its links over until it reaches the database again. Overlap never duplicates a
sample: two agents' samples of a measurement are taken at different times, and the
write path is idempotent on (link, probe, time) anyway. The gap the other way is also
bounded: a killed agent's links are unprobed for at most the lease plus a heartbeat
period, and that time is unknown in the states (stale samples), never down.

Agents never derive states: after each stored batch they upsert `samples_announced`
(per measurement, the earliest sample time not yet claimed), and the central process
claims those rows and derives from there (`claim_announced`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query
from kernel.domain import Sample
from kernel.errors import DatabaseError, LinkwatchError

log = logging.getLogger(__name__)

# Rows claimed by one pass of the central process: a pass stays one bounded derivation.
CLAIM_LIMIT = 10_000


class AgentIdTaken(LinkwatchError):
    """Another live process holds this agent's id."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    id: str  # '<site>/<name>'
    site_id: str
    host: str
    pid: int
    version: str

    def key(self) -> dict[str, object]:
        return {"id": self.id, "host": self.host, "pid": self.pid}


@dataclass(frozen=True, slots=True)
class AgentReport:
    """How an agent is, written with each heartbeat for operations."""

    spool_bytes: int
    queued: int  # samples waiting in its spool
    blind_since: datetime | None
    canaries_failing: int
    last_sample_at: datetime | None


@dataclass(frozen=True, slots=True)
class AgentRow:
    """An agent as `db stats` shows it."""

    id: str
    site_id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    spool_bytes: int
    queued: int
    blind_since: datetime | None
    canaries_failing: int
    last_sample_at: datetime | None
    live: bool


async def agent_tables_exist(conn: psycopg.AsyncConnection[Any]) -> bool:
    cur = await conn.execute(query("agents_tables_exist"))
    row = await cur.fetchone()
    return bool(row and row[0])


async def register(db: Database, me: AgentIdentity, lease: timedelta) -> None:
    """Take `me.id`'s row; AgentIdTaken if another process holds it with a live lease."""
    async with db.connection() as conn:
        cur = await conn.execute(
            query("agents_register"),
            {
                "id": me.id,
                "site_id": me.site_id,
                "host": me.host,
                "pid": me.pid,
                "version": me.version,
                "lease": lease,
            },
        )
        if await cur.fetchone() is not None:
            return
        cur = await conn.execute(query("agents_holder"), {"id": me.id})
        holder = await cur.fetchone()
    where = f" (host {holder[0]}, pid {holder[1]})" if holder else ""
    raise AgentIdTaken(f"agent {me.id} is already running{where}; give this one another --name")


async def heartbeat(
    db: Database, me: AgentIdentity, report: AgentReport, lease: timedelta
) -> list[str]:
    """Renew `me`'s lease (registering again if its row was taken over or lost) and
    return the live agents of its site, itself included."""
    async with db.connection() as conn:
        cur = await conn.execute(
            query("agents_heartbeat"),
            {
                **me.key(),
                "spool_bytes": report.spool_bytes,
                "queued": report.queued,
                "blind_since": report.blind_since,
                "canaries_failing": report.canaries_failing,
                "last_sample_at": report.last_sample_at,
            },
        )
        renewed = await cur.fetchone() is not None
    if not renewed:
        log.warning("agent lease lost, registering again agent=%s", me.id)
        await register(db, me, lease)
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("agents_live"), {"site_id": me.site_id, "lease": lease})
        return [row[0] for row in await cur.fetchall()]


async def mark_stopped(db: Database, me: AgentIdentity) -> None:
    """Mark `me` stopped: its links move at the other agents' next heartbeat."""
    async with db.connection() as conn:
        await conn.execute(query("agents_stop"), me.key())


async def announce(db: Database, batch: Sequence[Sample]) -> None:
    """Tell the central process that `batch` was stored (after its commit): per
    measurement, its earliest sample. Raises DatabaseError, so that the pipeline
    delivers the batch again."""
    earliest: dict[tuple[str, str], datetime] = {}
    for sample in batch:
        key = (sample.link_id, sample.probe_id)
        if key not in earliest or sample.observed_at < earliest[key]:
            earliest[key] = sample.observed_at
    if not earliest:
        return
    keys = sorted(earliest)
    async with db.connection() as conn:
        await conn.execute(
            query("samples_announce"),
            {
                "link_ids": [k[0] for k in keys],
                "probe_ids": [k[1] for k in keys],
                "earliest": [earliest[k] for k in keys],
            },
        )


async def claim_announced(
    db: Database, limit: int = CLAIM_LIMIT
) -> dict[tuple[str, str], datetime]:
    """Take (delete) up to `limit` announcements: per (link, probe), where to derive from."""
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("samples_announced_claim"), {"limit": limit})
        return {(link_id, probe_id): at for link_id, probe_id, at in await cur.fetchall()}


async def agent_rows(db: Database, lease: timedelta) -> list[AgentRow]:
    """Every agent registered, by site, with whether its lease is live now."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("agents_all"), {"lease": lease})
        return [AgentRow(*row) for row in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class AgentSeen:
    """An agent as operations see it: its row, and how long ago its last heartbeat and
    its newest sample were, by the database server's clock (the one that stamps the
    heartbeats and judges the leases), whatever the reader's own clock says."""

    row: AgentRow
    heartbeat_age: timedelta
    sample_lag: timedelta | None  # None: it has stored no sample yet


async def agents_seen(db: Database, lease: timedelta) -> list[AgentSeen]:
    """Every agent registered, by site, with its ages (see `AgentSeen`)."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("agents_seen"), {"lease": lease})
        return [AgentSeen(AgentRow(*row[:-2]), row[-2], row[-1]) for row in await cur.fetchall()]


class AgentLease:
    """An agent's heartbeat loop: every lease / 4, renew the lease, read the site's live
    agents and hand them to `on_agents` (which recomputes the agent's share). While the
    database is away the last share stays in force. On stop, the row is marked stopped."""

    def __init__(
        self,
        db: Database,
        me: AgentIdentity,
        lease: timedelta,
        report: Callable[[], AgentReport],
        on_agents: Callable[[list[str]], None],
    ) -> None:
        self._db = db
        self._me = me
        self._lease = lease
        self._report = report
        self._on_agents = on_agents
        self.beats = 0

    @property
    def period_s(self) -> float:
        return self._lease.total_seconds() / 4

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        failing = False
        while not stop.is_set():
            try:
                live = await asyncio.wait_for(
                    heartbeat(self._db, self._me, self._report(), self._lease), self.period_s
                )
            except (DatabaseError, TimeoutError) as exc:
                if not failing:
                    log.warning(
                        "agent heartbeat failed, probing the last share meanwhile agent=%s "
                        "cause=%s",
                        self._me.id,
                        exc or "no answer within a heartbeat period",
                    )
                failing = True
            else:
                if failing:
                    log.info("agent heartbeat renewed agent=%s", self._me.id)
                failing = False
                self.beats += 1
                self._on_agents(live)
            next_at = max(next_at + self.period_s, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), next_at - loop.time())
        try:
            await asyncio.wait_for(mark_stopped(self._db, self._me), self.period_s)
        except (DatabaseError, TimeoutError) as exc:
            log.warning(
                "agent not marked stopped, its links move when its lease runs out "
                "agent=%s cause=%s",
                self._me.id,
                exc or "no answer",
            )
