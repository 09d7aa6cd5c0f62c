"""Recurring maintenance in storage: the series (`maintenance_series`, 021), their skipped
occurrences, and the announcement of each occurrence as a maintenance window.

An occurrence becomes a `maintenance_windows` row (source 'series', id
`<series>@<start>`) only when it is announced, by `announce_due` at its start minus the
series' lead time or, after the daemon was away, as soon as it runs again; its
`announced_at` is the moment of that write and never earlier, so the SLA engine judges
the notice it really had. Writing an occurrence twice stores it once. Each staff action
(create, skip, cancel) and each announcement appends to the operations trail in its own
transaction. Nothing here decides what an occurrence means for a contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query
from collector.work_log import record_work
from kernel.durations import format_duration
from kernel.errors import DatabaseError
from kernel.recurrence import MaintenanceSeries, RecurrenceError, occurrence_id

log = logging.getLogger(__name__)

ANNOUNCER = "linkwatch"  # the trail's actor for what the daemon announces by itself
LOOK_EVERY = timedelta(minutes=1)  # the longest the announcer sleeps


class SeriesError(Exception):
    """A refused action on a series, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Announced:
    """An occurrence written as a maintenance window."""

    id: str
    starts_at: datetime
    ends_at: datetime
    announced_at: datetime
    cancelled_at: datetime | None


def _row(series: MaintenanceSeries) -> dict[str, Any]:
    return {
        "id": series.id,
        "description": series.description,
        "reference": series.reference,
        "link_ids": list(series.link_ids),
        "customer_ids": list(series.customer_ids),
        "global": series.everything,
        "local_start": series.start,
        "zone": series.zone,
        "duration": series.duration,
        "rrule": series.rule,
        "lead": series.lead,
    }


async def all_series(db: Database) -> list[MaintenanceSeries]:
    """Every series, cancelled ones too, in id order."""
    async with db.connection() as conn:
        return await _all(conn)


async def _all(conn: psycopg.AsyncConnection[Any]) -> list[MaintenanceSeries]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query("series_all"))
    return [
        MaintenanceSeries(
            id=row[0],
            description=row[1],
            reference=row[2],
            link_ids=tuple(row[3]),
            customer_ids=tuple(row[4]),
            start=row[5],
            zone=row[6],
            duration=row[7],
            rule=row[8],
            lead=row[9],
            source=row[10],
            created_by=row[11],
            cancelled_at=row[12],
            skipped=tuple(at.astimezone(UTC) for at in row[13]),
        )
        for row in await cur.fetchall()
    ]


async def announced_occurrences(db: Database, since: datetime) -> dict[str, list[Announced]]:
    """Per series id, its announced occurrences that end after `since`, in start order."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("series_occurrences_announced"), {"since": since})
        found: dict[str, list[Announced]] = {}
        for row in await cur.fetchall():
            found.setdefault(row[0].split("@", 1)[0], []).append(Announced(*row))
    return found


def _scope(series: MaintenanceSeries) -> dict[str, Sequence[str]]:
    return {"link_ids": series.link_ids, "customer_ids": series.customer_ids}


async def create_series(db: Database, series: MaintenanceSeries, *, now: datetime) -> None:
    """Store a series made in the portal or the API, with its entry in the trail; 409
    when the id is taken. Occurrences already due are announced by the next
    `announce_due`, which the caller may run at once."""
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("series_insert"),
            {
                **_row(series),
                "source": "portal",
                "created_by": series.created_by,
                "created_at": now,
            },
        )
        if await cur.fetchone() is None:
            raise SeriesError(409, f"a series {series.id!r} exists already; choose another id")
        await record_work(
            conn,
            at=now,
            actor=series.created_by,
            action="maintenance-series-created",
            subject=f"maintenance-series:{series.id}",
            detail=f"{series.description} [{series.reference}] {series.rule} from "
            f"{series.start.isoformat()} {series.zone}, {format_duration(series.duration)} "
            f"each, announced {format_duration(series.lead)} ahead",
            **_scope(series),
        )
    log.info("maintenance series created id=%s by=%s", series.id, series.created_by)


async def cancel_series(
    db: Database, series_id: str, *, by: str, reason: str, now: datetime
) -> None:
    """Stop a series: no occurrence is announced from now on (those announced stay, and
    are withdrawn one by one). 404 for an unknown series, 409 for a stopped one."""
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("series_cancel"), {"id": series_id, "by": by, "now": now})
        row = await cur.fetchone()
        if row is None:
            known = {s.id: s for s in await _all(conn)}
            if series_id not in known:
                raise SeriesError(404, f"no maintenance series {series_id!r}")
            raise SeriesError(409, f"the series {series_id!r} is cancelled already")
        await record_work(
            conn,
            at=now,
            actor=by,
            action="maintenance-series-cancelled",
            subject=f"maintenance-series:{series_id}",
            detail=reason,
            link_ids=row[1],
            customer_ids=row[2],
        )
    log.info("maintenance series cancelled id=%s by=%s", series_id, by)


async def skip_occurrence(
    db: Database,
    series: MaintenanceSeries,
    starts_at: datetime,
    *,
    by: str,
    reason: str,
    now: datetime,
) -> bool:
    """Skip the occurrence at `starts_at` (an EXDATE): it is never announced or, when it
    was, its window is withdrawn now (the evaluator then sends maintenance-cancelled).
    Returns whether an announced window was withdrawn. 400 for a time that is no
    occurrence, 409 for one that is over or skipped already."""
    start = starts_at.astimezone(UTC)
    if not series.recurrence().is_occurrence(start):
        raise SeriesError(
            400,
            f"{start.isoformat()} is not an occurrence of the series {series.id!r}; "
            "name the start of one as the series lists it",
        )
    if start + series.duration <= now:
        raise SeriesError(409, f"the occurrence at {start.isoformat()} is over already")
    window_id = occurrence_id(series.id, start)
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("series_skip_insert"),
            {"series_id": series.id, "starts_at": start, "by": by, "now": now, "reason": reason},
        )
        if await cur.fetchone() is None:
            raise SeriesError(409, f"the occurrence at {start.isoformat()} is skipped already")
        await cur.execute(query("series_occurrence_cancel"), {"id": window_id, "now": now})
        withdrawn = await cur.fetchone() is not None
        await record_work(
            conn,
            at=now,
            actor=by,
            action="maintenance-occurrence-skipped",
            subject=f"maintenance:{window_id}",
            detail=("announced window withdrawn; " if withdrawn else "")
            + (reason or "no reason given"),
            **_scope(series),
        )
    log.info("maintenance occurrence skipped id=%s withdrawn=%s by=%s", window_id, withdrawn, by)
    return withdrawn


async def sync_config_series(
    db: Database, listed: Sequence[MaintenanceSeries], *, now: datetime
) -> tuple[str, ...]:
    """Make the config's series what the file lists, in one transaction: listed ones are
    stored (a portal series of the same id is left alone), their skips added, and those
    it no longer lists stop announcing. Returns the ids stopped now."""
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        for series in listed:
            await cur.execute(query("series_upsert_config"), {**_row(series), "created_at": now})
            for start in series.skipped:
                await cur.execute(
                    query("series_skip_insert"),
                    {
                        "series_id": series.id,
                        "starts_at": start,
                        "by": "config",
                        "now": now,
                        "reason": "listed under skip in the config",
                    },
                )
        await cur.execute(
            query("series_cancel_missing_config"), {"kept": [s.id for s in listed], "now": now}
        )
        stopped = tuple(row[0] for row in await cur.fetchall())
    for series_id in stopped:
        log.info("maintenance series stopped: no longer in the config id=%s", series_id)
    return stopped


async def announce_due(db: Database, now: datetime) -> list[str]:
    """Write the window of every occurrence whose announcement time has come by `now`
    and that has not ended, announced now; those written before are left as they are.
    Returns the ids written now, each with its entry in the trail."""
    written: list[str] = []
    async with db.connection() as conn:
        for series in await _all(conn):
            try:
                due = series.due(now)
            except RecurrenceError as exc:  # stored by an earlier version that took it
                log.error("maintenance series not announced id=%s cause=%s", series.id, exc)
                continue
            for start in due:
                window = series.window(start, announced_at=now)
                async with conn.transaction():
                    cur = conn.cursor(row_factory=tuple_row)
                    await cur.execute(
                        query("series_occurrence_insert"),
                        {
                            "id": window.id,
                            "description": window.description,
                            "link_ids": list(window.link_ids),
                            "customer_ids": list(window.customer_ids),
                            "global": series.everything,
                            "starts_at": window.starts_at,
                            "ends_at": window.ends_at,
                            "announced_at": now,
                        },
                    )
                    if await cur.fetchone() is None:
                        continue
                    ahead = window.starts_at - now
                    await record_work(
                        conn,
                        at=now,
                        actor=ANNOUNCER,
                        action="maintenance-announced",
                        subject=f"maintenance:{window.id}",
                        detail=f"occurrence of series {series.id}, "
                        + (
                            f"{format_duration(ahead)} ahead"
                            if ahead > timedelta(0)
                            else "after it began"
                        )
                        + (
                            ""
                            if ahead >= series.lead
                            else f" (due {format_duration(series.lead)} ahead: announced late)"
                        ),
                        **_scope(series),
                    )
                written.append(window.id)
                log.info(
                    "maintenance occurrence announced id=%s starts_at=%s ahead=%s",
                    window.id,
                    window.starts_at.isoformat(),
                    format_duration(max(window.starts_at - now, timedelta(0))),
                )
    return written


def next_due(series: Sequence[MaintenanceSeries], now: datetime) -> datetime:
    """When `announce_due` has something to write next: the earliest announcement time
    after `now`, but no later than `now + LOOK_EVERY` (a series may be created meanwhile)."""
    soonest = now + LOOK_EVERY
    for item in series:
        if item.cancelled_at is not None:
            continue
        with contextlib.suppress(RecurrenceError):  # announce_due says why
            soonest = min(soonest, _next_announcement(item, now, soonest))
    return max(soonest, now)


def _next_announcement(item: MaintenanceSeries, now: datetime, soonest: datetime) -> datetime:
    after = now + item.lead + timedelta(microseconds=1)  # now's are announced already
    starts = item.occurrences(after, soonest + item.lead)
    return starts[0] - item.lead if starts else soonest


async def run_announcer(
    db: Database,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """The daemon's announcer: announce what is due, then sleep until the next
    announcement time (at most `LOOK_EVERY`), so that an occurrence is announced at its
    lead time and not up to a polling period after it. A database away skips a turn; the
    occurrences due meanwhile are announced, late, when it answers again."""
    failing = False
    while not stop.is_set():
        wake = clock() + LOOK_EVERY
        try:
            now = clock()
            await announce_due(db, now)
            wake = next_due(await all_series(db), now)
        except DatabaseError as exc:
            if not failing:
                log.warning(
                    "maintenance occurrences not announced, database unavailable cause=%s", exc
                )
            failing = True
        else:
            failing = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max((wake - clock()).total_seconds(), 0.0))
