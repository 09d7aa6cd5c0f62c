"""Outage acknowledgements: someone in operations has seen the outage and is on it.

An outage is named by its link and its confirmed start, as the link's incidents list it
(`collector.state_reads.Incident`). It is acknowledged once: who, when, an optional note.
A second acknowledgement is refused and says who acknowledged it and when, since two
people on the same outage at night want to know about each other. The row and its entry
in the operations trail are written in one transaction; neither is ever changed
(022_outage_acknowledgements.sql). Escalation stops at an acknowledgement, and the
operations report measures the time to it; neither is decided here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query
from collector.work_log import record_work
from kernel.errors import LinkwatchError

MAX_NOTE_CHARS = 1000
ACTION = "outage-acknowledged"
_US = timedelta(microseconds=1)


class AcknowledgementError(LinkwatchError):
    """An acknowledgement a person can fix or must know about: no such outage, one
    acknowledged already, a note too long. The message says which."""

    exit_code = 2

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status  # 400: fix the request; 404: no such outage; 409: done already


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    link_id: str
    outage_start: datetime
    by: str
    at: datetime
    note: str

    @property
    def after_start(self) -> timedelta:
        """The time to acknowledge: from the outage's confirmed start."""
        return self.at - self.outage_start


def outage_key(start: datetime) -> str:
    """How an outage's start is written in a path and a subject: UTC, with a Z."""
    return start.astimezone(UTC).isoformat().replace("+00:00", "Z")


def subject_of(link_id: str, start: datetime) -> str:
    """The operations trail's name for an outage."""
    return f"outage:{link_id}:{outage_key(start)}"


async def acknowledge(
    db: Database,
    link_id: str,
    outage_start: datetime,
    *,
    by: str,
    at: datetime,
    note: str = "",
    customer_id: str | None = None,
) -> Acknowledgement:
    """Acknowledge the link's outage that began at `outage_start` (running or over)."""
    note = note.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise AcknowledgementError(
            f"the note has {len(note)} characters; at most {MAX_NOTE_CHARS} are allowed"
        )
    if "\x00" in note:
        raise AcknowledgementError("the note contains a NUL character; send it without")
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await _check_outage(cur, link_id, outage_start, at)
        await cur.execute(
            query("acknowledgements_insert"),
            {"link_id": link_id, "outage_start": outage_start, "by": by, "at": at, "note": note},
        )
        made = await cur.fetchone()
        if made is None:
            await cur.execute(
                query("acknowledgements_one"), {"link_id": link_id, "outage_start": outage_start}
            )
            row = await cur.fetchone()
            assert row is not None
            old = Acknowledgement(*row)
            raise AcknowledgementError(
                f"the outage of {link_id} that began {outage_key(outage_start)} was "
                f"acknowledged already, by {old.by} at {outage_key(old.at)}"
                + (f": {old.note}" if old.note else ""),
                status=409,
            )
        done = Acknowledgement(*made)
        await record_work(
            conn,
            at=at,
            actor=by,
            action=ACTION,
            subject=subject_of(link_id, outage_start),
            detail=note,
            link_ids=[link_id],
            customer_ids=[customer_id] if customer_id else [],
        )
    return done


async def _check_outage(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], link_id: str, outage_start: datetime, at: datetime
) -> None:
    """An error unless the link has a stored outage that began at `outage_start`."""
    if outage_start <= at:
        await cur.execute(
            query("incidents_overlapping"),
            {"link_ids": [link_id], "start": outage_start, "end": at + _US},
        )
        if any(row[1] == outage_start for row in await cur.fetchall()):
            return
    raise AcknowledgementError(
        f"{link_id} has no outage that began at {outage_key(outage_start)}; name an outage "
        "by its start as the link's incidents list it",
        status=404,
    )


async def acknowledgement(
    db: Database, link_id: str, outage_start: datetime
) -> Acknowledgement | None:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("acknowledgements_one"), {"link_id": link_id, "outage_start": outage_start}
        )
        row = await cur.fetchone()
    return None if row is None else Acknowledgement(*row)


async def acknowledgements(
    db: Database, link_ids: Sequence[str], start: datetime, end: datetime
) -> list[Acknowledgement]:
    """The acknowledgements of these links' outages that began in [start, end), oldest
    outage first."""
    if not link_ids:
        return []
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("acknowledgements_of_links"),
            {"link_ids": list(link_ids), "start": start, "end": end},
        )
        return [Acknowledgement(*row) for row in await cur.fetchall()]
