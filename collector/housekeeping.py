"""Database upkeep: data retention, rollup materialization, and the figures behind
`linkwatch db stats`.

`run_housekeeping()` keeps raw samples for `settings.retention` and rollups for longer.
On plain PostgreSQL it deletes old rows itself, oldest first in small transactions; on
TimescaleDB the retention policy drops whole chunks and housekeeping only reports on it.
It materializes rollups first and never deletes a sample that is not rolled up yet.
`database_stats()` and `render_stats()` describe the database for an operator.

Nothing here deletes anything younger than its retention, or runs one long transaction
over a big table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from collector.agents import AgentRow, agent_rows
from collector.chunking import ChunkSizing
from collector.database import Database
from collector.migrate import chunk_sizing
from collector.queries import query
from collector.rollups import Bucket, bucket_floor, materialize_rollups, rollup_watermarks
from collector.settings import StorageSettings
from collector.site_record import BlindSpan, recent_blind_spans
from collector.spool import SpoolStatus
from collector.state_reads import StateFailure, state_failures
from kernel.durations import format_duration
from kernel.formatting import byte_size, count_of, duration_text, text_table

logger = logging.getLogger(__name__)

# Rollups answer "how was this link last year?" long after the raw samples are gone.
DEFAULT_ROLLUP_RETENTION = timedelta(days=5 * 365 + 1)  # five years, leap day included
DEFAULT_BATCH_SIZE = 10_000
# Below this size a table is counted exactly for `db stats`; above it the planner's
# estimate is shown, as counting would read the whole table.
DEFAULT_EXACT_COUNT_MAX_BYTES = 64 * 1024 * 1024

Engine = Literal["postgresql", "timescaledb"]
# A cutoff before every sample: deletes nothing.
_DELETE_NOTHING = datetime(1, 1, 1, tzinfo=UTC)
_ROLLUP_AGGREGATES = ("samples_hourly", "samples_daily")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """TimescaleDB's retention job on samples, as its last runs left it."""

    job_id: int
    drop_after: timedelta
    next_start: datetime | None
    last_successful_finish: datetime | None
    last_run_status: str | None  # "Success", "Failed", None before the first run
    total_failures: int | None


@dataclass(frozen=True, slots=True)
class HousekeepingReport:
    """What one housekeeping run did.

    `samples_cutoff` is the start of the UTC day `retention` before `now`: samples before
    it are removed (on TimescaleDB by the retention policy, chunk by chunk, so some may
    linger until their whole chunk is old enough). The cutoff is day-aligned so that no
    hour or day bucket keeps only part of its raw samples. `complete` is False when
    `max_batches` stopped a plain-PostgreSQL run with old rows left.
    """

    engine: Engine
    now: datetime
    samples_cutoff: datetime
    samples_deleted: int
    sample_batches: int
    rollups_cutoff: datetime
    rollups_deleted: int  # plain PostgreSQL: rows of the rollups table
    rollup_chunks_dropped: int  # TimescaleDB: chunks of the rollup aggregates
    rollups_materialized_until: Mapping[Bucket, datetime | None]
    oldest_sample: datetime | None  # after the run
    complete: bool
    took_s: float
    retention_policy: RetentionPolicy | None = None  # TimescaleDB only

    def summary(self) -> str:
        """One log line of key=value pairs."""
        marks = self.rollups_materialized_until
        parts = [
            f"engine={self.engine}",
            f"samples_cutoff={_iso(self.samples_cutoff)}",
            f"samples_deleted={self.samples_deleted}",
            f"batches={self.sample_batches}",
            f"rollups_cutoff={_iso(self.rollups_cutoff)}",
            f"rollups_deleted={self.rollups_deleted}",
            f"rollup_chunks_dropped={self.rollup_chunks_dropped}",
            f"hourly_until={_iso(marks.get('hour'))}",
            f"daily_until={_iso(marks.get('day'))}",
            f"oldest_sample={_iso(self.oldest_sample)}",
            f"complete={self.complete}",
            f"took_s={self.took_s:.2f}",
        ]
        policy = self.retention_policy
        if policy is not None:
            parts += [
                f"retention_policy_drop_after={policy.drop_after}",
                f"retention_policy_last_run={policy.last_run_status or 'never'}",
                f"retention_policy_next_start={_iso(policy.next_start)}",
            ]
        return " ".join(parts)


async def run_housekeeping(
    db: Database,
    settings: StorageSettings,
    now: datetime,
    *,
    rollup_retention: timedelta = DEFAULT_ROLLUP_RETENTION,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> HousekeepingReport:
    """Materialize rollups, then apply sample and rollup retention; report what was done.

    Safe to run at any time and concurrently with writes; every statement is its own
    short transaction, so an interrupted run simply continues next time. `max_batches`
    bounds the sample deletes of one run (None: until done).
    """
    if now.tzinfo is None:
        raise ValueError("run_housekeeping needs a timezone-aware now")
    if rollup_retention < settings.retention:
        raise ValueError(
            f"rollup_retention ({rollup_retention}) must be at least the sample retention "
            f"({settings.retention}): rollups outlive the samples they summarise"
        )
    if batch_size < 1 or (max_batches is not None and max_batches < 1):
        raise ValueError("batch_size and max_batches must be at least 1")
    began = time.monotonic()
    samples_cutoff = bucket_floor(now - settings.retention, "day")
    rollups_cutoff = bucket_floor(now - rollup_retention, "day")

    marks = await materialize_rollups(db, now)
    deleted = batches = rollups_deleted = chunks_dropped = 0
    complete = True
    policy = None
    if db.timescaledb:
        policy = await _retention_policy(db)
        chunks_dropped = await _drop_rollup_chunks(db, rollups_cutoff)
    else:
        # Never delete a sample whose buckets are not materialized: their numbers would
        # be lost. materialize_rollups just ran, so this holds back only if someone
        # passes a `now` earlier than the one materialized for.
        held = [m for m in marks.values() if m is not None]
        limit = min([samples_cutoff, *held]) if len(held) == len(marks) else _DELETE_NOTHING
        if limit < samples_cutoff:
            logger.warning(
                "sample retention held back to the materialized rollups cutoff=%s held_at=%s",
                _iso(samples_cutoff),
                _iso(limit),
            )
        deleted, batches, complete = await _delete_batches(
            db, "housekeeping_delete_samples", limit, batch_size, max_batches
        )
        rollups_deleted, _, _ = await _delete_batches(
            db, "housekeeping_delete_rollups", rollups_cutoff, batch_size, None
        )
    report = HousekeepingReport(
        engine="timescaledb" if db.timescaledb else "postgresql",
        now=now,
        samples_cutoff=samples_cutoff,
        samples_deleted=deleted,
        sample_batches=batches,
        rollups_cutoff=rollups_cutoff,
        rollups_deleted=rollups_deleted,
        rollup_chunks_dropped=chunks_dropped,
        rollups_materialized_until=marks,
        oldest_sample=(await _sample_times(db))[0],
        complete=complete,
        took_s=time.monotonic() - began,
        retention_policy=policy,
    )
    logger.info("housekeeping done %s", report.summary())
    return report


async def _delete_batches(
    db: Database, name: str, cutoff: datetime, batch_size: int, max_batches: int | None
) -> tuple[int, int, bool]:
    """Run a bounded delete until it comes up short; return (rows, batches, complete)."""
    deleted = batches = 0
    start: datetime | None = None
    while max_batches is None or batches < max_batches:
        async with db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(
                query(name), {"from": start, "cutoff": cutoff, "batch_size": batch_size}
            )
            row = await cur.fetchone()
        count, newest = (0, None) if row is None else row
        batches += 1
        deleted += count
        logger.debug("housekeeping batch query=%s deleted=%d up_to=%s", name, count, newest)
        if count < batch_size:
            return deleted, batches, True
        start = newest
    return deleted, batches, False


async def _retention_policy(db: Database) -> RetentionPolicy | None:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("housekeeping_timescaledb_retention"))
        row = await cur.fetchone()
    if row is None:
        logger.warning("timescaledb has no retention policy on samples; samples are kept")
        return None
    return RetentionPolicy(*row)


async def _drop_rollup_chunks(db: Database, cutoff: datetime) -> int:
    dropped = 0
    async with db.connection() as conn:
        for view in _ROLLUP_AGGREGATES:
            cur = await conn.execute(
                query("housekeeping_timescaledb_drop_rollup_chunks"),
                {"view": view, "cutoff": cutoff},
            )
            dropped += max(cur.rowcount, 0)
    return dropped


async def _sample_times(db: Database) -> tuple[datetime | None, datetime | None]:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("stats_sample_times"))
        row = await cur.fetchone()
    return (None, None) if row is None else (row[0], row[1])


# -- db stats --------------------------------------------------------------------------


RelationKind = Literal["table", "hypertable", "continuous aggregate"]


@dataclass(frozen=True, slots=True)
class RelationStats:
    """Size and rows of one table, hypertable or continuous aggregate.

    `rows` is exact when `rows_exact`, else the planner's estimate (None: the table was
    never analyzed). For a continuous aggregate it counts the materialized rows.
    """

    name: str
    kind: RelationKind
    rows: int | None
    rows_exact: bool
    table_bytes: int  # heap and TOAST
    index_bytes: int
    total_bytes: int
    chunks: int | None = None
    compressed_chunks: int | None = None
    bytes_before_compression: int | None = None  # of the chunks now compressed
    bytes_after_compression: int | None = None


@dataclass(frozen=True, slots=True)
class DbStats:
    """A snapshot of the database for `linkwatch db stats`."""

    database: str
    server_version: str
    timescaledb_version: str | None  # None: plain PostgreSQL
    database_bytes: int
    relations: tuple[RelationStats, ...]
    oldest_sample: datetime | None
    newest_sample: datetime | None
    lag: timedelta | None  # now - newest sample
    rollups_materialized_until: Mapping[Bucket, datetime | None]
    now: datetime
    spool: SpoolStatus | None = None
    chunk_interval: timedelta | None = None  # TimescaleDB: of the samples chunks made next
    chunk_sizing: ChunkSizing | None = None  # how the settings given choose it
    state_failures: tuple[StateFailure, ...] = ()  # probes whose states cannot be derived
    # The site's blind spans open now or ended within BLIND_DAYS, newest first.
    blind_spans: tuple[BlindSpan, ...] = ()
    agents: tuple[AgentRow, ...] = ()  # probe agents ever registered, by site


async def database_stats(
    db: Database,
    *,
    spool_status: SpoolStatus | None = None,
    now: datetime,
    settings: StorageSettings | None = None,
    exact_count_max_bytes: int = DEFAULT_EXACT_COUNT_MAX_BYTES,
    agent_lease: timedelta = timedelta(seconds=60),
) -> DbStats:
    """Sizes, row counts, sample times and rollup state; TimescaleDB chunks where used.

    With `settings`, the stats say how they choose the chunk interval. An agent is live
    while its heartbeat is within `agent_lease` (collector.agent_lease).
    """
    if now.tzinfo is None:
        raise ValueError("database_stats needs a timezone-aware now")
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("stats_database"))
        version, database_bytes, ts_version = await cur.fetchone() or ("?", 0, None)
        await cur.execute(query("stats_tables"))
        table_rows = await cur.fetchall()
        ts_rows: list[tuple[Any, ...]] = []
        chunk_interval = sizing = None
        if db.timescaledb:
            await cur.execute(query("stats_timescaledb"))
            ts_rows = await cur.fetchall()
            await cur.execute(query("timescaledb_current_chunk_interval"))
            chunk_interval = (await cur.fetchone() or (None,))[0]
            if settings is not None:
                sizing = await chunk_sizing(conn, settings)
        relations = []
        hypertables = {row[0] for row in ts_rows}
        for name, schema, estimate, table_b, index_b, total_b in table_rows:
            if name in hypertables:
                continue  # the empty parent; the hypertable row below has its figures
            counted = (schema, name)
            rows, exact = await _rows(conn, counted, estimate, table_b, exact_count_max_bytes)
            relations.append(RelationStats(name, "table", rows, exact, table_b, index_b, total_b))
        for name, kind, schema, table, estimate, table_b, index_b, total_b, *chunks in ts_rows:
            counted = (schema, table)
            rows, exact = await _rows(conn, counted, estimate, total_b, exact_count_max_bytes)
            relations.append(
                RelationStats(name, kind, rows, exact, table_b, index_b, total_b, *chunks)
            )
    oldest, newest = await _sample_times(db)
    return DbStats(
        database=db.name,
        server_version=version,
        timescaledb_version=ts_version if db.timescaledb else None,
        database_bytes=database_bytes,
        relations=tuple(sorted(relations, key=lambda r: (-r.total_bytes, r.name))),
        oldest_sample=oldest,
        newest_sample=newest,
        lag=None if newest is None else now - newest,
        rollups_materialized_until=await rollup_watermarks(db),
        now=now,
        spool=spool_status,
        chunk_interval=chunk_interval,
        chunk_sizing=sizing,
        state_failures=tuple(await state_failures(db)),
        blind_spans=tuple(await recent_blind_spans(db, now - timedelta(days=BLIND_DAYS))),
        agents=tuple(await agent_rows(db, agent_lease)),
    )


async def _rows(
    conn: psycopg.AsyncConnection[Any],
    table: tuple[str, str],
    estimate: int | None,
    size_bytes: int,
    exact_max_bytes: int,
) -> tuple[int | None, bool]:
    """An exact count for a small table, else the estimate (None when there is none)."""
    if size_bytes <= exact_max_bytes:
        statement = sql.SQL(query("stats_exact_count")).format(relation=sql.Identifier(*table))
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(statement)
        row = await cur.fetchone()
        if row is not None:
            return int(row[0]), True
    return (None if estimate is None or estimate < 0 else int(estimate)), False


def render_stats(stats: DbStats) -> str:
    """`stats` as the text `linkwatch db stats` prints: a summary, then one row a table."""
    engine = f"PostgreSQL {stats.server_version}"
    if stats.timescaledb_version:
        engine += f", TimescaleDB {stats.timescaledb_version}"
    else:
        engine += " (rollups maintained by Linkwatch)"
    marks = stats.rollups_materialized_until
    lines = [
        ("Database", stats.database),
        ("Engine", engine),
        ("Size", _size(stats.database_bytes)),
        ("Oldest sample", _when(stats.oldest_sample)),
        (
            "Newest sample",
            _when(stats.newest_sample)
            + ("" if stats.lag is None else f"  ({duration_text(stats.lag, space=' ')} ago)"),
        ),
        (
            "Rollups",
            f"hourly materialized until {_when(marks.get('hour'))}, "
            f"daily until {_when(marks.get('day'))}; later buckets are computed on read",
        ),
    ]
    if stats.chunk_interval is not None:
        lines.append(("Chunk length", _chunk_interval(stats.chunk_interval, stats.chunk_sizing)))
    if stats.spool is not None:
        lines.append(("Spool", _spool(stats.spool)))
    failures = stats.state_failures
    lines.append(
        (
            "States",
            f"{count_of(len(failures), 'probe')} cannot be derived, listed below"
            if failures
            else "derived for every probe",
        )
    )
    lines.append(("Site", _blind(stats.blind_spans, stats.now)))
    width = max(len(label) for label, _ in lines)
    out = [f"{label:<{width}}  {value}" for label, value in lines]

    header = ("Table", "Kind", "Rows", "Data", "Indexes", "Total", "Chunks", "Compressed")
    table = [header]
    for r in stats.relations:
        rows = "?" if r.rows is None else f"{r.rows:,}" if r.rows_exact else f"~{r.rows:,}"
        chunks = "" if r.chunks is None else str(r.chunks)
        compressed = ""
        if r.compressed_chunks:
            compressed = count_of(r.compressed_chunks, "chunk")
            if r.bytes_before_compression and r.bytes_after_compression is not None:
                compressed += (
                    f", {_size(r.bytes_before_compression)} -> {_size(r.bytes_after_compression)}"
                )
        table.append(
            (
                r.name,
                r.kind,
                rows,
                _size(r.table_bytes),
                _size(r.index_bytes),
                _size(r.total_bytes),
                chunks,
                compressed,
            )
        )
    # Drop the TimescaleDB columns when no row uses them.
    used = [i for i in range(len(header)) if i < 6 or any(row[i] for row in table[1:])]
    numbers = {2, 3, 4, 5, 6}  # line up on the right
    out.append("")
    out.append(
        text_table(
            [[row[i] for i in used] for row in table],
            right={pos for pos, i in enumerate(used) if i in numbers},
        )
    )
    if any(not r.rows_exact for r in stats.relations):
        out.append("")
        out.append("~ estimated from table statistics; ? not yet analyzed")
    if failures:
        out += ["", *_state_failures(failures)]
    if stats.agents:
        out += ["", *_agents(stats.agents, stats.now)]
    return "\n".join(out) + "\n"


def _agents(agents: Sequence[AgentRow], now: datetime) -> list[str]:
    """Per site, each probe agent: its last heartbeat, whether its lease is live, its
    spool backlog and whether its site's canaries see."""
    out = ["Agents (probe agents by site; live: heartbeat within collector.agent_lease):"]
    rows: list[tuple[str, ...]] = [
        ("Site", "Agent", "Host", "Last heartbeat", "State", "Spool", "Canaries")
    ]
    for agent in agents:
        ago = duration_text(max(now - agent.heartbeat_at, timedelta(0)), space=" ")
        if agent.stopped_at is not None:
            state = f"stopped {_when(agent.stopped_at)}"
        else:
            state = "live" if agent.live else "not live (lease ran out)"
        spool = f"{_size(agent.spool_bytes)}, {count_of(agent.queued, 'sample')} waiting"
        sight = (
            f"BLIND since {_when(agent.blind_since)}"
            if agent.blind_since is not None
            else f"{agent.canaries_failing} failing"
        )
        rows.append(
            (
                agent.site_id,
                agent.id,
                f"{agent.host} pid {agent.pid}",
                f"{_when(agent.heartbeat_at)} ({ago} ago)",
                state,
                spool,
                sight,
            )
        )
    return out + ["  " + line for line in text_table(rows).splitlines()]


def _state_failures(failures: Sequence[StateFailure]) -> list[str]:
    out = [
        "Links whose states cannot be derived (the rest of the link and every other link "
        "are derived; once the sample is deleted or corrected with `linkwatch import samples "
        "--replace`, the probe's next sample derives it again):"
    ]
    for f in failures:
        out.append(
            f"  link {f.link_id}  probe {f.probe_id}  since {_when(f.since)}"
            f" (last tried {_when(f.last_failed_at)})  {f.error}"
        )
    return out


def _chunk_interval(applied: timedelta, sizing: ChunkSizing | None) -> str:
    if sizing is None:
        return format_duration(applied)
    if sizing.interval == applied:
        return sizing.describe()
    # Another process set it since, or these settings differ from the running ones.
    return f"{format_duration(applied)}; these settings give {sizing.describe()}"


def _spool(spool: SpoolStatus) -> str:
    text = f"{_size(spool.bytes_used)} of {_size(spool.max_bytes)} ({spool.used_pct:.1f} %)"
    text += f", {count_of(spool.samples_pending, 'sample')} waiting"
    if spool.oldest_pending_at is not None:
        text += f" since {spool.oldest_pending_at:%Y-%m-%d %H:%M:%S} UTC"
    if spool.full:
        text += " - FULL: probing paused"
    elif spool.warning:
        text += " - above the warning level"
    return text


def _size(n: int) -> str:
    return byte_size(n, space=" ")


# How far back `db stats` looks for the site's blind spans.
BLIND_DAYS = 7


def _blind(spans: Sequence[BlindSpan], now: datetime) -> str:
    """The monitor's own sight: blind now, or its last blind span of the week."""
    if not spans:
        return f"no blind span in {BLIND_DAYS} days"
    last = spans[0]
    if last.ends_at is None:
        lasted = duration_text(now - last.starts_at, space=" ")
        return f"{last.site_id} BLIND since {_when(last.starts_at)} ({lasted}): {last.reason}"
    lasted = duration_text(last.ends_at - last.starts_at, space=" ")
    return (
        f"{count_of(len(spans), 'blind span')} in {BLIND_DAYS} days; the last "
        f"{_when(last.starts_at)} for {lasted}: {last.reason}"
    )


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "none"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(moment: datetime | None) -> str:
    return "none" if moment is None else moment.isoformat()
