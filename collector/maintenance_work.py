"""Maintenance windows staff create, reschedule and cancel from the portal and the API.

The system, never a person, records when a window was announced: the moment it is
created or rescheduled, which is when the evaluator tells the customers concerned. So
the notice the SLA engine weighs against a contract's `maintenance_notice` is the notice
customers really had. A reschedule is a new announcement (its notice counts from it, and
its `sequence` goes up); a cancellation stops the window covering time from then on.

Each action is one transaction that changes the window, appends a row to the window's
history (`maintenance_history`: who, when, from what to what) and an entry to the
operations trail (`collector.work_log`), so none of the three can claim what the others
do not. Windows declared in the config (or by the demo) belong to that source: it
re-imports them at every start and reload, so they are refused here with a message
saying where to change them. Nothing here decides whether a window is excluded from an
SLA, nor sends anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query
from collector.stored import maintenance_row
from collector.work_log import record_work
from kernel.config import Config
from kernel.domain import MaintenanceWindow
from kernel.errors import LinkwatchError

IMPACTS = ("OUTAGE", "DEGRADED", "REDUCED-REDUNDANCY", "NO-IMPACT")  # BCOP maintnote
MAX_DESCRIPTION_CHARS = 1000
MAX_REFERENCE_CHARS = 200
MAX_NOTE_CHARS = 1000
MAX_LENGTH = timedelta(days=31)  # longer work is several windows, each announced
MAX_AHEAD = timedelta(days=366)  # the evaluator announces up to 400 days ahead
MAX_TARGETS = 10_000

Action = Literal["created", "rescheduled", "cancelled"]


class MaintenanceError(LinkwatchError):
    """A request a person can fix: times out of order or in the past, an unknown link,
    a window that has ended, one the config owns. The message says which and what to do."""

    exit_code = 2

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status  # 400: fix the request; 404: no such window; 409: its state


@dataclass(frozen=True, slots=True)
class Scope:
    """What a window covers as stored (`link_ids`, `customer_ids`; both empty: every
    link) and the customers whose links it concerns, for the operations trail."""

    link_ids: tuple[str, ...]
    customer_ids: tuple[str, ...]
    concerned: tuple[str, ...]

    @property
    def everything(self) -> bool:
        return not self.link_ids and not self.customer_ids


@dataclass(frozen=True, slots=True)
class StoredWindow:
    window: MaintenanceWindow
    source: str  # "portal", "config" or "demo"

    @property
    def editable(self) -> bool:
        """Whether staff may reschedule or cancel it here: only windows made here."""
        return self.source == "portal"


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    actor: str
    action: Action
    starts_at: datetime
    ends_at: datetime
    previous_starts_at: datetime | None
    previous_ends_at: datetime | None
    sequence: int
    note: str


def resolve_scope(
    config: Config,
    *,
    link_ids: Sequence[str] = (),
    customer_ids: Sequence[str] = (),
    everything: bool = False,
) -> Scope:
    """The scope of a new window from what staff chose: some links, customers, or
    everything (exactly one of them), each id one the config knows."""
    links = list(dict.fromkeys(i.strip() for i in link_ids if i.strip()))
    customers = list(dict.fromkeys(i.strip() for i in customer_ids if i.strip()))
    if everything and (links or customers):
        raise MaintenanceError(
            "choose links, customers or everything: a window for everything names no links "
            "or customers"
        )
    if not everything and not links and not customers:
        raise MaintenanceError(
            "say what the work covers: one or more links, one or more customers, or everything"
        )
    if len(links) + len(customers) > MAX_TARGETS:
        raise MaintenanceError(f"at most {MAX_TARGETS} links and customers in one window")
    owner = {link.id: link.customer for link in config.links}
    known_customers = {customer.id for customer in config.customers}
    unknown = [i for i in links if i not in owner]
    if unknown:
        raise MaintenanceError(f"no such link: {', '.join(unknown[:10])}")
    strangers = [c for c in customers if c not in known_customers]
    if strangers:
        raise MaintenanceError(f"no such customer: {', '.join(strangers[:10])}")
    if everything:
        concerned = sorted(known_customers)
    else:
        concerned = sorted({owner[i] for i in links} | set(customers))
    return Scope(tuple(links), tuple(customers), tuple(concerned))


def _text(value: str, name: str, *, most: int, required: bool) -> str:
    text = value.strip()
    if required and not text:
        raise MaintenanceError(f"{name} is required: say what the work is, customers read it")
    if "\x00" in text:
        raise MaintenanceError(f"{name} contains a NUL character; send it without")
    if len(text) > most:
        raise MaintenanceError(f"{name} has {len(text)} characters; at most {most} are allowed")
    return text


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def check_times(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    """Times a window may be given: in order, not over already, not absurdly long or far."""
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value.tzinfo is None:
            raise MaintenanceError(f"{name} needs its UTC offset, e.g. 2026-11-24T02:00:00Z")
    if ends_at <= starts_at:
        raise MaintenanceError(
            f"the end ({_utc(ends_at)}) must be after the start ({_utc(starts_at)})"
        )
    if ends_at <= now:
        raise MaintenanceError(
            f"the work would be over already: it ends {_utc(ends_at)}, and it is {_utc(now)}"
        )
    if ends_at - starts_at > MAX_LENGTH:
        raise MaintenanceError(
            f"a window lasts at most {MAX_LENGTH.days} days; announce longer work as several"
        )
    if starts_at > now + MAX_AHEAD:
        raise MaintenanceError(f"a window starts at most {MAX_AHEAD.days} days from now")


def _window(row: Sequence[Any]) -> StoredWindow:
    return StoredWindow(maintenance_row(row), source=row[11])


async def _history(
    cur: psycopg.AsyncCursor[tuple[Any, ...]],
    window: MaintenanceWindow,
    *,
    at: datetime,
    actor: str,
    action: Action,
    before: MaintenanceWindow | None = None,
    note: str = "",
) -> None:
    await cur.execute(
        query("maintenance_history_insert"),
        {
            "window_id": window.id,
            "at": at,
            "actor": actor,
            "action": action,
            "starts_at": window.starts_at,
            "ends_at": window.ends_at,
            "previous_starts_at": None if before is None else before.starts_at,
            "previous_ends_at": None if before is None else before.ends_at,
            "sequence": window.sequence,
            "note": note,
        },
    )


def _scope_text(window: MaintenanceWindow) -> str:
    if not window.link_ids and not window.customer_ids:
        return "every link"
    parts = []
    if window.link_ids:
        parts.append("links " + ", ".join(window.link_ids[:20]))
    if window.customer_ids:
        parts.append("customers " + ", ".join(window.customer_ids[:20]))
    return "; ".join(parts)


def _ahead(window: MaintenanceWindow) -> str:
    lead = window.starts_at - window.announced_at
    if lead <= timedelta(0):
        return "announced after it began"
    hours = lead // timedelta(hours=1)
    return f"announced {hours} h ahead" if hours else "announced under an hour ahead"


async def create_window(
    db: Database,
    scope: Scope,
    *,
    starts_at: datetime,
    ends_at: datetime,
    description: str,
    reference: str = "",
    impact: str = "OUTAGE",
    by: str,
    now: datetime,
) -> MaintenanceWindow:
    """Store a new window announced now, with its history and trail entries."""
    description = _text(description, "the description", most=MAX_DESCRIPTION_CHARS, required=True)
    reference = _text(reference, "the reference", most=MAX_REFERENCE_CHARS, required=False)
    if "\n" in reference or "\r" in reference:
        raise MaintenanceError("the reference is one line: a ticket or change number")
    if impact not in IMPACTS:
        raise MaintenanceError(f"impact {impact!r} is not known; use one of {', '.join(IMPACTS)}")
    check_times(starts_at, ends_at, now)
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        window_id = None
        while window_id is None:  # an id the config happens to use is skipped
            await cur.execute(query("maintenance_work_next_id"))
            candidate = await cur.fetchone()
            assert candidate is not None
            await cur.execute(
                query("maintenance_work_insert"),
                {
                    "id": candidate[0],
                    "description": description,
                    "link_ids": list(scope.link_ids),
                    "customer_ids": list(scope.customer_ids),
                    "global": scope.everything,
                    "starts_at": starts_at,
                    "ends_at": ends_at,
                    "announced_at": now,
                    "reference": reference,
                    "impact": impact,
                },
            )
            row = await cur.fetchone()
            window_id = None if row is None else row[0]
        window = MaintenanceWindow(
            id=window_id,
            starts_at=starts_at,
            ends_at=ends_at,
            announced_at=now,
            description=description,
            link_ids=scope.link_ids,
            customer_ids=scope.customer_ids,
            reference=reference,
            impact=impact,
        )
        await _history(cur, window, at=now, actor=by, action="created")
        await record_work(
            conn,
            at=now,
            actor=by,
            action="maintenance-announced",
            subject=f"maintenance:{window.id}",
            detail=f"{description}{f' ({reference})' if reference else ''}: "
            f"{_utc(starts_at)} to {_utc(ends_at)}, {_ahead(window)}; {_scope_text(window)}",
            link_ids=scope.link_ids,
            customer_ids=scope.concerned,
        )
    return window


async def _locked(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], window_id: str, now: datetime, doing: str
) -> StoredWindow:
    """The window to change, locked; refused when it cannot be changed here."""
    await cur.execute(query("maintenance_work_lock"), {"id": window_id})
    row = await cur.fetchone()
    if row is None:
        raise MaintenanceError(f"no maintenance window {window_id}", status=404)
    stored = _window(row)
    window = stored.window
    if not stored.editable:
        raise MaintenanceError(
            f"{window_id} is declared in the {stored.source} file and imported from it: "
            f"{doing} it there",
            status=409,
        )
    if window.cancelled_at is not None:
        raise MaintenanceError(
            f"{window_id} was cancelled {_utc(window.cancelled_at)}; announce new work instead",
            status=409,
        )
    if window.ends_at <= now:
        raise MaintenanceError(f"{window_id} ended {_utc(window.ends_at)}", status=409)
    return stored


def _concerned(config: Config | None, window: MaintenanceWindow) -> tuple[str, ...]:
    if config is None:
        return window.customer_ids
    owner = {link.id: link.customer for link in config.links}
    if not window.link_ids and not window.customer_ids:
        return tuple(sorted(c.id for c in config.customers))
    return tuple(
        sorted({owner[i] for i in window.link_ids if i in owner} | set(window.customer_ids))
    )


async def reschedule_window(
    db: Database,
    window_id: str,
    *,
    starts_at: datetime,
    ends_at: datetime,
    by: str,
    now: datetime,
    note: str = "",
    config: Config | None = None,
) -> MaintenanceWindow:
    """Move a window that has not begun to new times: announced again now, so the notice
    counts from now. Work that has begun is cancelled (stopped) instead, and an overrun
    past its end counts normally, as contracts say."""
    note = _text(note, "the note", most=MAX_NOTE_CHARS, required=False)
    check_times(starts_at, ends_at, now)
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        before = (await _locked(cur, window_id, now, "move")).window
        if before.starts_at <= now:
            raise MaintenanceError(
                f"{window_id} began {_utc(before.starts_at)}: work under way cannot be moved. "
                "Cancel it to stop it now (the time from then counts normally), or announce "
                "further work as a new window",
                status=409,
            )
        if (before.starts_at, before.ends_at) == (starts_at, ends_at):
            raise MaintenanceError(
                f"{window_id} is already planned from {_utc(starts_at)} to {_utc(ends_at)}"
            )
        await cur.execute(
            query("maintenance_work_reschedule"),
            {"id": window_id, "starts_at": starts_at, "ends_at": ends_at, "announced_at": now},
        )
        after = replace(
            before,
            starts_at=starts_at,
            ends_at=ends_at,
            announced_at=now,
            sequence=before.sequence + 1,
        )
        await _history(cur, after, at=now, actor=by, action="rescheduled", before=before, note=note)
        await record_work(
            conn,
            at=now,
            actor=by,
            action="maintenance-rescheduled",
            subject=f"maintenance:{window_id}",
            detail=f"from {_utc(before.starts_at)} – {_utc(before.ends_at)} "
            f"to {_utc(starts_at)} – {_utc(ends_at)}, {_ahead(after)}"
            f"{f'; {note}' if note else ''}",
            link_ids=after.link_ids,
            customer_ids=_concerned(config, after),
        )
    return after


async def cancel_window(
    db: Database,
    window_id: str,
    *,
    by: str,
    now: datetime,
    note: str = "",
    config: Config | None = None,
) -> MaintenanceWindow:
    """Cancel a window from now on: one not begun covers nothing (withdrawn), one under
    way stops covering time now. The evaluator tells whoever heard of it."""
    note = _text(note, "the note", most=MAX_NOTE_CHARS, required=False)
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        before = (await _locked(cur, window_id, now, "remove")).window
        await cur.execute(query("maintenance_work_cancel"), {"id": window_id, "cancelled_at": now})
        after = replace(before, cancelled_at=now)
        await _history(cur, after, at=now, actor=by, action="cancelled", note=note)
        what = "withdrawn before it began" if after.withdrawn else "stopped early"
        await record_work(
            conn,
            at=now,
            actor=by,
            action="maintenance-cancelled",
            subject=f"maintenance:{window_id}",
            detail=f"{what} ({_utc(before.starts_at)} – {_utc(before.ends_at)})"
            f"{f'; {note}' if note else ''}",
            link_ids=after.link_ids,
            customer_ids=_concerned(config, after),
        )
    return after


async def stored_window(db: Database, window_id: str) -> StoredWindow | None:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("maintenance_work_one"), {"id": window_id})
        row = await cur.fetchone()
    return None if row is None else _window(row)


async def window_history(db: Database, window_id: str) -> list[HistoryEntry]:
    """What was done to the window, oldest first."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("maintenance_history_of"), {"window_id": window_id})
        return [HistoryEntry(*row) for row in await cur.fetchall()]
