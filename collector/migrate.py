"""Schema migrations: numbered SQL files, applied once each, plus the TimescaleDB setup.

`migrate()` is safe to re-run and safe for two processes at once (an advisory lock
serialises them). TimescaleDB is used when the server has it, unless configured off; every
step of its setup is re-runnable and brings the settings and policies in line with the
configuration. It needs TimescaleDB 2.18 or later, whose columnstore API
(`timescaledb.enable_columnstore`, `add_columnstore_policy`) replaced the compression API;
a database set up with the older calls carries the same settings and job, which are
simply taken over. The rollup continuous aggregates and their refresh policies are part
of that setup.
This module must never drop or rewrite data, and never edit an applied migration file:
a change to the schema is a new numbered file.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from collector.chunking import ChunkSizing, size_chunk_interval
from collector.queries import query
from collector.settings import StorageSettings
from kernel.durations import format_duration
from kernel.errors import DatabaseError

logger = logging.getLogger(__name__)

# Any constant works as long as no other application on the database uses it: "LNKWTCH".
_LOCK_KEY = 0x4C4E4B57544348
_FILE_NAME = re.compile(r"^(\d{3}_[a-z0-9_]+)\.sql$")
# The columnstore API arrived in 2.18; before it only the deprecated compression API.
MIN_TIMESCALEDB = (2, 18)
# The columnstore layout of samples, as timescaledb_information spells it.
_SEGMENT_BY = "link_id,probe_id"
_ORDER_BY = "observed_at DESC"


@dataclass(frozen=True, slots=True)
class Migration:
    name: str  # e.g. "001_samples"
    sql: str
    checksum: str  # sha256 of the text, to notice an applied file that was edited


def migrations() -> list[Migration]:
    """The migration files shipped with this version, in the order they apply."""
    found = []
    for entry in (resources.files(__package__) / "migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            text = entry.read_text(encoding="utf-8")
            digest = hashlib.sha256(text.encode()).hexdigest()
            found.append(Migration(match.group(1), text, digest))
    return sorted(found, key=lambda m: m.name)


async def migrate(conn: psycopg.AsyncConnection[Any], settings: StorageSettings) -> list[str]:
    """Apply the migrations this database lacks and set up TimescaleDB; return names applied.

    Everything runs in one transaction: a failure leaves the schema as it was.
    """
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute(query("migrations_lock"), {"key": _LOCK_KEY})
        await conn.execute(query("schema_migrations"))
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("migrations_applied"))
        applied: dict[str, str] = {name: checksum for name, checksum in await cur.fetchall()}
        known = migrations()
        for migration in known:
            if migration.name in applied:
                if applied[migration.name] != migration.checksum:
                    logger.warning(
                        "applied migration changed since name=%s; schema changes belong "
                        "in a new numbered file",
                        migration.name,
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                query("migration_record"),
                {"name": migration.name, "checksum": migration.checksum},
            )
            applied_now.append(migration.name)
        unknown = sorted(set(applied) - {m.name for m in known})
        if unknown:
            logger.warning(
                "database has migrations this version does not know names=%s; "
                "was it migrated by a newer Linkwatch?",
                ",".join(unknown),
            )
        await _setup_timescaledb(conn, settings)
    for name in applied_now:
        logger.info("migration applied name=%s", name)
    return applied_now


async def timescaledb_enabled(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether `samples` is a TimescaleDB hypertable in this database."""
    if not await _scalar(conn, "timescaledb_installed"):
        return False
    return bool(await _scalar(conn, "samples_is_hypertable"))


async def _setup_timescaledb(conn: psycopg.AsyncConnection[Any], settings: StorageSettings) -> None:
    mode = settings.timescaledb
    if mode == "off":
        return
    if not await _scalar(conn, "timescaledb_available"):
        if mode == "require":
            raise DatabaseError(
                "database.timescaledb is 'require' but this PostgreSQL server has no "
                "timescaledb extension; install TimescaleDB (the timescale/timescaledb image "
                "has it) or set database.timescaledb to 'auto'"
            )
        logger.info("timescaledb not available; samples stay a plain table")
        return
    if not await _recent_enough(conn, mode):
        return
    try:
        # A savepoint: in "auto" mode a refusal must not abort the migration transaction.
        async with conn.transaction():
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        if mode == "require":
            raise DatabaseError(
                f"database.timescaledb is 'require' but CREATE EXTENSION timescaledb failed: "
                f"{exc}; it must be in shared_preload_libraries and the user needs the "
                "privilege to create it"
            ) from exc
        logger.warning("timescaledb available but not usable, plain tables used cause=%s", exc)
        return

    sizing = await chunk_sizing(conn, settings)
    previous = await _scalar(conn, "timescaledb_current_chunk_interval")
    await conn.execute(query("timescaledb_hypertable"), {"chunk_interval": sizing.interval})
    await conn.execute(query("timescaledb_chunk_interval"), {"chunk_interval": sizing.interval})
    logger.info(
        "timescaledb chunk interval %s previous=%s",
        sizing.describe(),
        "none" if previous is None else format_duration(previous),
    )
    if not sizing.fits:
        logger.warning(
            "shared_buffers too small for the samples' indexes samples_per_s=%.1f "
            "shared_buffers_bytes=%d chunk_interval=%s; give PostgreSQL a larger "
            "shared_buffers (TimescaleDB advises 25 %% of memory) or set "
            "database.chunk_interval",
            sizing.samples_per_s or 0.0,
            sizing.shared_buffers_bytes or 0,
            format_duration(sizing.interval),
        )
    await _columnstore(conn)
    await _policy(conn, _COLUMNSTORE_POLICY, settings.compress_after)
    await _policy(conn, _RETENTION_POLICY, settings.retention)
    for rollup in _ROLLUP_AGGREGATES:
        await conn.execute(query(rollup.create_query))
        await _refresh_policy(conn, rollup, settings, sizing.interval)


async def chunk_sizing(
    conn: psycopg.AsyncConnection[Any], settings: StorageSettings
) -> ChunkSizing:
    """The samples chunk interval for these settings on this server."""
    return size_chunk_interval(
        configured=settings.chunk_interval,
        samples_per_s=settings.ingest_samples_per_s,
        shared_buffers_bytes=int(await _scalar(conn, "server_shared_buffers")),
    )


async def _recent_enough(conn: psycopg.AsyncConnection[Any], mode: str) -> bool:
    """Whether the TimescaleDB here has the columnstore API; False: stay plain ("auto").

    Raises where Linkwatch can neither use it nor do without it: "require", or samples
    already a hypertable under an extension that must be updated first.
    """
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query("timescaledb_version"))
    installed, available = await cur.fetchone() or (None, None)
    version = installed or available
    if _version(version) >= MIN_TIMESCALEDB:
        return True
    problem = (
        f"TimescaleDB {version} is older than 2.18, the first version with the columnstore "
        "API Linkwatch uses"
    )
    if installed is not None and await _scalar(conn, "samples_is_hypertable"):
        raise DatabaseError(
            f"{problem}, and samples is a hypertable of this database already; install "
            "TimescaleDB 2.18 or later on the server, then update the extension in this "
            "database with ALTER EXTENSION timescaledb UPDATE as the first command of a "
            "new session (psql -X)"
        )
    if mode == "require":
        raise DatabaseError(
            f"database.timescaledb is 'require' but {problem}; install TimescaleDB 2.18 or "
            "later (the timescale/timescaledb image 2.28.3-pg16 has it) or set "
            "database.timescaledb to 'auto'"
        )
    logger.warning("%s; samples stay a plain table", problem)
    return False


def _version(text: str | None) -> tuple[int, ...]:
    """(2, 18, 0) from '2.18.0' or '2.18.0-dev'; () when there is none."""
    match = re.match(r"\d+(?:\.\d+)*", text or "")
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


async def _columnstore(conn: psycopg.AsyncConnection[Any]) -> None:
    """Enable the columnstore on samples with Linkwatch's layout, unless it has it.

    A database set up with the older `timescaledb.compress` options already has it: those
    options set the same settings. Chunks converted before a layout change keep theirs.
    """
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query("timescaledb_columnstore_settings"))
    enabled, segment_by, order_by = await cur.fetchone() or (False, None, None)
    if enabled and (segment_by, order_by) == (_SEGMENT_BY, _ORDER_BY):
        return
    if not enabled:
        await conn.execute(query("timescaledb_enable_columnstore"))
    else:
        try:
            # A savepoint: a layout the server will not change must not stop start-up.
            async with conn.transaction():
                await conn.execute(query("timescaledb_enable_columnstore"))
        except psycopg.Error as exc:
            logger.warning(
                "timescaledb columnstore layout kept segmentby=%s orderby=%s wanted=%s/%s cause=%s",
                segment_by,
                order_by,
                _SEGMENT_BY,
                _ORDER_BY,
                exc,
            )
            return
    logger.info(
        "timescaledb columnstore enabled segmentby=%s orderby=%s previous=%s",
        _SEGMENT_BY,
        _ORDER_BY,
        f"{segment_by}/{order_by}" if enabled else "off",
    )


@dataclass(frozen=True, slots=True)
class _Policy:
    """A TimescaleDB policy job on samples, and the calls that add and remove it."""

    name: str  # for the log
    proc_name: str  # in timescaledb_information.jobs
    key: str  # the job config's interval
    add_query: str
    remove_query: str


_COLUMNSTORE_POLICY = _Policy(
    "columnstore",
    "policy_compression",
    "compress_after",
    "timescaledb_add_columnstore_policy",
    "timescaledb_remove_columnstore_policy",
)
_RETENTION_POLICY = _Policy(
    "retention",
    "policy_retention",
    "drop_after",
    "timescaledb_add_retention_policy",
    "timescaledb_remove_retention_policy",
)


async def _policy(conn: psycopg.AsyncConnection[Any], policy: _Policy, wanted: timedelta) -> None:
    """Create a policy job, or replace it when the configured interval has changed."""
    current = await _scalar(
        conn, "timescaledb_policy_config", {"key": policy.key, "proc_name": policy.proc_name}
    )
    if current == wanted:
        return
    if current is not None:
        await conn.execute(query(policy.remove_query))
    await conn.execute(query(policy.add_query), {policy.key: wanted})
    logger.info(
        "timescaledb policy set policy=%s interval=%s previous=%s",
        policy.name,
        format_duration(wanted),
        "none" if current is None else format_duration(current),
    )


@dataclass(frozen=True, slots=True)
class _RollupAggregate:
    """A continuous aggregate of samples and how its refresh policy runs."""

    view: str
    create_query: str
    width: timedelta
    # How far back each policy run looks for late samples (older ones need an explicit
    # collector.rollups.refresh_rollups), how recent a bucket it leaves to real-time
    # aggregation, and how often it runs.
    start_offset: timedelta
    end_offset: timedelta
    schedule_interval: timedelta


_ROLLUP_AGGREGATES = (
    _RollupAggregate(
        "samples_hourly",
        "rollups_timescaledb_create_hourly",
        timedelta(hours=1),
        timedelta(days=3),
        timedelta(hours=1),
        timedelta(minutes=30),
    ),
    _RollupAggregate(
        "samples_daily",
        "rollups_timescaledb_create_daily",
        timedelta(days=1),
        timedelta(days=7),
        timedelta(hours=1),
        timedelta(hours=1),
    ),
)


async def _refresh_policy(
    conn: psycopg.AsyncConnection[Any],
    rollup: _RollupAggregate,
    settings: StorageSettings,
    chunk_interval: timedelta,
) -> None:
    """Create a rollup aggregate's refresh policy, or replace it when it should differ."""
    # A refresh over a range whose raw chunks the retention policy dropped empties the
    # aggregate there: the policy's window must stay clear of the retention horizon.
    start_offset = min(rollup.start_offset, settings.retention - chunk_interval)
    shortest = rollup.end_offset + 2 * rollup.width  # TimescaleDB's minimum window
    if start_offset < shortest:
        logger.warning(
            "retention too short for rollup refresh policy view=%s retention=%s "
            "start_offset=%s; aggregates may lose buckets whose samples are dropped",
            rollup.view,
            settings.retention,
            shortest,
        )
        start_offset = shortest
    wanted = (start_offset, rollup.end_offset, rollup.schedule_interval)
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query("rollups_timescaledb_policy_config"), {"view": rollup.view})
    current = await cur.fetchone()
    if current == wanted:
        return
    if current is not None:
        await conn.execute(query("rollups_timescaledb_policy_remove"), {"view": rollup.view})
    await conn.execute(
        query("rollups_timescaledb_policy_add"),
        {
            "view": rollup.view,
            "start_offset": start_offset,
            "end_offset": rollup.end_offset,
            "schedule_interval": rollup.schedule_interval,
        },
    )
    logger.info(
        "timescaledb rollup refresh policy set view=%s start_offset=%s end_offset=%s "
        "schedule=%s previous=%s",
        rollup.view,
        start_offset,
        rollup.end_offset,
        rollup.schedule_interval,
        current,
    )


async def _scalar(
    conn: psycopg.AsyncConnection[Any], name: str, params: dict[str, Any] | None = None
) -> Any:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query(name), params)
    row = await cur.fetchone()
    return None if row is None else row[0]
