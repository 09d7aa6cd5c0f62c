"""Stored data other than the sample writes: maintenance windows and sample bookkeeping.

Small named queries for the daemon, the demo and the SLA engine. Nothing here derives
status or availability.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query
from kernel.domain import MaintenanceWindow

logger = logging.getLogger(__name__)

MaintenanceSource = Literal["config", "demo", "portal"]


async def upsert_maintenance(
    db: Database, windows: Sequence[MaintenanceWindow], *, source: MaintenanceSource
) -> int:
    """Store `windows` as coming from `source`, updating those with the same id.

    Returns how many rows were inserted or updated. A window with no links and no
    customers covers everything (stored as `global`). Windows missing from `windows`, and
    cancellations, are left as they are: `sync_maintenance` is for the one process that
    owns a source's list.
    """
    if not windows:
        return 0
    async with db.connection() as conn, conn.transaction():
        return await _upsert(conn.cursor(row_factory=tuple_row), windows, source)


async def _upsert(
    cur: psycopg.AsyncCursor[tuple[Any, ...]],
    windows: Sequence[MaintenanceWindow],
    source: MaintenanceSource,
) -> int:
    if not windows:
        return 0
    params = [
        {
            "id": w.id,
            "description": w.description,
            "link_ids": list(w.link_ids),
            "customer_ids": list(w.customer_ids),
            "global": not w.link_ids and not w.customer_ids,
            "starts_at": w.starts_at,
            "ends_at": w.ends_at,
            "announced_at": w.announced_at,
            "source": source,
        }
        for w in windows
    ]
    await cur.executemany(query("maintenance_upsert"), params, returning=False)
    return max(cur.rowcount, 0)


@dataclass(frozen=True, slots=True)
class MaintenanceSync:
    """What bringing a source's list of windows in changed."""

    stored: int  # windows inserted or updated
    cancelled: tuple[str, ...]  # ids of windows it no longer lists, cancelled now


async def sync_maintenance(
    db: Database,
    windows: Sequence[MaintenanceWindow],
    *,
    source: MaintenanceSource,
    now: datetime,
) -> MaintenanceSync:
    """Make the stored windows of `source` what it lists now, in one transaction: the
    listed ones are stored (`upsert_maintenance`), and those it no longer lists are
    cancelled as of `now` unless they have ended already (finished work is history: it
    stays reportable, and excluded as it was). A window listed again is in force again.
    """
    listed = [w.id for w in windows]
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        stored = await _upsert(cur, windows, source)
        await cur.execute(query("maintenance_reinstate"), {"source": source, "ids": listed})
        reinstated = [row[0] for row in await cur.fetchall()]
        await cur.execute(
            query("maintenance_cancel_missing"), {"source": source, "kept": listed, "now": now}
        )
        cancelled = tuple(row[0] for row in await cur.fetchall())
    for window_id in cancelled:
        logger.info(
            "maintenance window cancelled: no longer in the %s id=%s at=%s",
            source,
            window_id,
            now.isoformat(),
        )
    for window_id in reinstated:
        logger.info("maintenance window in force again: back in the %s id=%s", source, window_id)
    return MaintenanceSync(stored, cancelled)


async def maintenance_windows(
    db: Database, start: datetime, end: datetime
) -> list[MaintenanceWindow]:
    """Windows overlapping [start, end), in start order."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("maintenance_overlapping"), {"start": start, "end": end})
        rows = await cur.fetchall()
    return [maintenance_row(row) for row in rows]


def maintenance_row(row: Sequence[Any]) -> MaintenanceWindow:
    """A window from a row of maintenance_windows' columns, in the order of
    maintenance_overlapping.sql."""
    return MaintenanceWindow(
        id=row[0],
        starts_at=row[1],
        ends_at=row[2],
        announced_at=row[3],
        description=row[4],
        link_ids=tuple(row[5]),
        customer_ids=tuple(row[6]),
        cancelled_at=row[7],
        reference=row[8],
        impact=row[9],
        sequence=row[10],
    )


async def latest_sample_time(db: Database) -> datetime | None:
    """When the newest stored sample was observed; None when there are none."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("samples_latest_time"))
        row = await cur.fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True, slots=True)
class DeletedSamples:
    """What `delete_samples` removed of one probe."""

    probe_id: str
    count: int
    first: datetime
    last: datetime


async def delete_samples(
    db: Database,
    link_id: str,
    probe_ids: Sequence[str] | None,
    start: datetime,
    end: datetime | None,
    record: Callable[[Sequence[DeletedSamples]], Awaitable[None]],
) -> list[DeletedSamples]:
    """Delete `link_id`'s samples in [start, end) (end None: unbounded; of `probe_ids`,
    None: every probe), in
    one transaction with `record(deleted)`, the caller's audit record: never one without
    the other. States are the caller's to derive again."""
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("samples_delete_range"),
            {
                "link_id": link_id,
                "probe_ids": None if probe_ids is None else list(probe_ids),
                "from": start,
                "to": end,
            },
        )
        deleted = [DeletedSamples(*row) for row in await cur.fetchall()]
        if deleted:
            await record(deleted)
    return deleted
