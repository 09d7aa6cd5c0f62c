"""Outage time attributed to the customer: stored, withdrawn, read.

Staff say which part of a link's outage the customer caused (CPE powered off, the
customer's own maintenance) and why; whether a contract excludes that time is the SLA
engine's business (`customer_caused`), not this module's. An attribution lies inside
one stored outage of its link as it was when it was made, and never overlaps another
attribution of the link that is in force: both are checked in the transaction that
inserts it, under a per-link lock.

A row is its own audit record and is never deleted or changed, except once to record
its withdrawal (who, when, why): 018_outage_attributions.sql enforces that for every
client. Nothing here computes availability or touches the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query
from kernel.errors import LinkwatchError

MAX_REASON_CHARS = 1000


class AttributionError(LinkwatchError):
    """An attribution or withdrawal a person can fix: outside an outage, overlapping
    another, already withdrawn. The message says which and what is allowed."""

    exit_code = 2

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status  # 400: fix the request; 404: no such attribution; 409: state


@dataclass(frozen=True, slots=True)
class Attribution:
    """Part of a link's outage, [starts_at, ends_at), attributed to the customer."""

    id: int
    link_id: str
    outage_start: datetime  # the outage it was made on
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    withdrawn_by: str | None = None
    withdrawn_at: datetime | None = None
    withdrawn_reason: str | None = None

    @property
    def in_force(self) -> bool:
        return self.withdrawn_at is None


def _attribution(row: Sequence[Any]) -> Attribution:
    return Attribution(*row)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def attribute(
    db: Database,
    link_id: str,
    outage_start: datetime,
    *,
    reason: str,
    by: str,
    at: datetime,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Attribution:
    """Attribute [starts_at, ends_at) of the link's outage that began at `outage_start`
    to the customer; the bounds default to the outage's own. A running outage needs an
    end, up to `at`: what happens after it is not known yet."""
    reason = reason.strip()
    if not reason:
        raise AttributionError("give the reason the outage is the customer's; it is audited")
    if len(reason) > MAX_REASON_CHARS:
        raise AttributionError(
            f"the reason has {len(reason)} characters; at most {MAX_REASON_CHARS} are allowed"
        )
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("attributions_lock_link"), {"link_id": link_id})
        outage_end = await _outage_end(cur, link_id, outage_start, at)
        start = outage_start if starts_at is None else starts_at
        if ends_at is not None:
            end = ends_at
        elif outage_end is not None:
            end = outage_end
        else:
            raise AttributionError(
                f"the outage of {link_id} that began {_utc(outage_start)} is still running: "
                f"give an end after the start and no later than now ({_utc(at)})"
            )
        limit = outage_end if outage_end is not None else at
        if not outage_start <= start < end <= limit:
            raise AttributionError(
                f"{_utc(start)} to {_utc(end)} is not inside the outage of {link_id} "
                f"({_utc(outage_start)} to {_utc(limit)}"
                f"{'' if outage_end is not None else ', running'}): give a start and an "
                "end within it, the start before the end"
            )
        await cur.execute(
            query("attributions_of_links"),
            {"link_ids": [link_id], "start": start, "end": end, "in_force": True},
        )
        clash = await cur.fetchone()
        if clash is not None:
            other = _attribution(clash)
            raise AttributionError(
                f"{_utc(start)} to {_utc(end)} overlaps attribution #{other.id} "
                f"({_utc(other.starts_at)} to {_utc(other.ends_at)}); withdraw it first, "
                "or attribute only the time it does not cover",
                status=409,
            )
        await cur.execute(
            query("attributions_insert"),
            {
                "link_id": link_id,
                "outage_start": outage_start,
                "starts_at": start,
                "ends_at": end,
                "reason": reason,
                "created_by": by,
                "created_at": at,
            },
        )
        made = await cur.fetchone()
    assert made is not None
    return _attribution(made)


async def _outage_end(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], link_id: str, outage_start: datetime, at: datetime
) -> datetime | None:
    """The end of the link's stored outage that began at `outage_start` (None: running);
    an error when it has no such outage."""
    await cur.execute(
        query("incidents_overlapping"),
        {"link_ids": [link_id], "start": outage_start, "end": max(at, outage_start)},
    )
    for _link, starts_at, ends_at, *_ in await cur.fetchall():
        if starts_at == outage_start:
            end: datetime | None = ends_at
            return end
    raise AttributionError(
        f"{link_id} has no outage that began at {_utc(outage_start)}; name an outage by "
        "its start as the link's incidents list it",
        status=404,
    )


async def withdraw(
    db: Database, link_id: str, attribution_id: int, *, reason: str, by: str, at: datetime
) -> Attribution:
    """Withdraw an attribution in force (a disputed one): it stays in the history, and
    its time counts again from the next computation."""
    reason = reason.strip()
    if not reason:
        raise AttributionError("give the reason for the withdrawal; it is audited")
    if len(reason) > MAX_REASON_CHARS:
        raise AttributionError(
            f"the reason has {len(reason)} characters; at most {MAX_REASON_CHARS} are allowed"
        )
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("attributions_withdraw"),
            {"id": attribution_id, "link_id": link_id, "by": by, "at": at, "reason": reason},
        )
        row = await cur.fetchone()
        if row is None:
            await cur.execute(
                query("attributions_by_id"), {"id": attribution_id, "link_id": link_id}
            )
            found = await cur.fetchone()
            if found is None:
                raise AttributionError(
                    f"{link_id} has no attribution #{attribution_id}", status=404
                )
            old = _attribution(found)
            raise AttributionError(
                f"attribution #{attribution_id} was withdrawn already, by {old.withdrawn_by} "
                f"at {_utc(old.withdrawn_at or at)}",
                status=409,
            )
    return _attribution(row)


async def attributions(
    db: Database,
    link_ids: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    in_force: bool = False,
) -> list[Attribution]:
    """The attributions of these links overlapping [start, end), oldest first; with
    `in_force`, only those not withdrawn."""
    if not link_ids:
        return []
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("attributions_of_links"),
            {"link_ids": list(link_ids), "start": start, "end": end, "in_force": in_force},
        )
        return [_attribution(row) for row in await cur.fetchall()]


async def attribution(db: Database, link_id: str, attribution_id: int) -> Attribution | None:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("attributions_by_id"), {"id": attribution_id, "link_id": link_id})
        row = await cur.fetchone()
    return None if row is None else _attribution(row)


async def recent_attributions(
    db: Database,
    *,
    link_ids: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[Attribution]:
    """Attributions made or withdrawn in [since, until), of these links (None: every
    link), the newest event first: what the audit trail shows of them."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("attributions_recent"),
            {
                "link_ids": None if link_ids is None else list(link_ids),
                "since": since,
                "until": until,
                "limit": limit,
            },
        )
        return [_attribution(row) for row in await cur.fetchall()]
