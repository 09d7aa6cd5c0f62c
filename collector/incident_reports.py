"""Incidents as staff tell them to customers: outages of a shared failure grouped into
one incident, the updates posted on it ("fibre cut between X and Y, crew on site, ETA
14:00"), and the cause the final update closes it with.

An outage is named as the incidents view lists it, by its link and its start, and
belongs to one incident at most (the table's key says so for every client). Each write
(opening, grouping, posting, closing) happens in one transaction with its entry in the
operations trail (`collector.work_log`) and, for an update, its notification events:
one per customer concerned, naming that customer's links only, and one for operations
with every link (`collector.outbox`). Updates are never changed or deleted
(023_incident_reports.sql). Nothing here renders a message or decides who may read what.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.outbox import record_events
from collector.queries import query
from collector.work_log import record_work
from kernel.domain import Event, EventKind
from kernel.errors import LinkwatchError

MAX_TITLE_CHARS = 200
MAX_BODY_CHARS = 2000
MAX_CAUSE_CHARS = 1000
MAX_OUTAGES = 1000  # a whole PoP's links at once, and then some

# The cause a closed incident names: a short category for reports, then the text.
CAUSE_CATEGORIES: dict[str, str] = {
    "fibre-cut": "Fibre cut",
    "power": "Power failure",
    "hardware": "Hardware failure",
    "software": "Software fault",
    "configuration": "Configuration error",
    "upstream-provider": "Upstream provider",
    "customer-side": "At the customer's site",
    "third-party-works": "Third-party works",
    "other": "Other",
}


class IncidentReportError(LinkwatchError):
    """A request a person can fix: no such outage, an outage in another incident, an
    incident closed already, a blank update. The message says which and what to do."""

    exit_code = 2

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status  # 400: fix the request; 404: no such incident; 409: its state


@dataclass(frozen=True, slots=True)
class OutageRef:
    """An outage as the incidents view lists it: its link and its confirmed start."""

    link_id: str
    outage_start: datetime


@dataclass(frozen=True, slots=True)
class IncidentOutage:
    link_id: str
    outage_start: datetime
    added_by: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    id: int
    incident_id: int
    posted_by: str
    posted_at: datetime
    body: str
    link_ids: tuple[str, ...]  # the links the incident covered when it was posted
    closes: bool


@dataclass(frozen=True, slots=True)
class IncidentReport:
    id: int
    title: str
    opened_by: str
    opened_at: datetime
    closed_by: str | None
    closed_at: datetime | None
    cause_category: str | None
    cause: str | None
    outages: tuple[IncidentOutage, ...] = ()
    updates: tuple[IncidentUpdate, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def link_ids(self) -> tuple[str, ...]:
        return tuple(sorted({o.link_id for o in self.outages}))

    @property
    def cause_label(self) -> str | None:
        if self.cause_category is None:
            return None
        return CAUSE_CATEGORIES.get(self.cause_category, self.cause_category)

    def narrowed(self, link_ids: set[str] | frozenset[str]) -> IncidentReport:
        """The incident as someone who may see only `link_ids` reads it: their outages,
        and each update naming their links alone."""
        return replace(
            self,
            outages=tuple(o for o in self.outages if o.link_id in link_ids),
            updates=tuple(
                replace(u, link_ids=tuple(i for i in u.link_ids if i in link_ids))
                for u in self.updates
            ),
        )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: str, name: str, most: int, why: str) -> str:
    value = value.strip()
    if not value:
        raise IncidentReportError(f"give the {name}: {why}")
    if len(value) > most:
        raise IncidentReportError(
            f"the {name} has {len(value)} characters; at most {most} are allowed"
        )
    return value


def _outages(outages: Sequence[OutageRef]) -> list[OutageRef]:
    unique = sorted(set(outages), key=lambda o: (o.outage_start, o.link_id))
    if not unique:
        raise IncidentReportError("pick at least one outage, by its link and its start")
    if len(unique) > MAX_OUTAGES:
        raise IncidentReportError(
            f"{len(unique)} outages at once; at most {MAX_OUTAGES} are allowed"
        )
    return unique


async def _check_outages_exist(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], outages: Sequence[OutageRef], at: datetime
) -> None:
    starts = [o.outage_start for o in outages]
    await cur.execute(
        query("incidents_overlapping"),
        {
            "link_ids": sorted({o.link_id for o in outages}),
            "start": min(starts),
            "end": max(max(starts), at) + timedelta(microseconds=1),
        },
    )
    stored = {(row[0], row[1]) for row in await cur.fetchall()}
    for outage in outages:
        if (outage.link_id, outage.outage_start) not in stored:
            raise IncidentReportError(
                f"{outage.link_id} has no outage that began at {_utc(outage.outage_start)}; "
                "name an outage by its start as the link's incidents list it",
                status=404,
            )


async def _attach(
    cur: psycopg.AsyncCursor[tuple[Any, ...]],
    incident_id: int,
    outages: Sequence[OutageRef],
    by: str,
    at: datetime,
) -> list[OutageRef]:
    """Add the outages no incident holds yet; an error naming the other incident when
    one holds any of them. Returns those added (not those this incident held already)."""
    params = {"link_ids": [o.link_id for o in outages], "starts": [o.outage_start for o in outages]}
    await cur.execute(query("incident_reports_holders"), params)
    for link_id, start, holder in await cur.fetchall():
        if holder != incident_id:
            raise IncidentReportError(
                f"the outage of {link_id} that began {_utc(start)} is part of incident "
                f"#{holder} already; post updates there, or pick other outages",
                status=409,
            )
    await cur.execute(
        query("incident_reports_add_outages"), {**params, "id": incident_id, "by": by, "at": at}
    )
    return [OutageRef(link_id, start) for link_id, start in await cur.fetchall()]


def _customers_of(link_ids: Sequence[str], customers: Mapping[str, str]) -> list[str]:
    return sorted({customers[i] for i in link_ids if i in customers})


def _listing(outages: Sequence[OutageRef]) -> str:
    return ", ".join(f"{o.link_id} down since {_utc(o.outage_start)}" for o in outages)


async def open_incident(
    db: Database,
    outages: Sequence[OutageRef],
    *,
    title: str,
    by: str,
    at: datetime,
    customers: Mapping[str, str],
) -> IncidentReport:
    """Open an incident over these outages (a shared failure's); `customers` maps each
    link to its customer, for the operations trail."""
    title = _text(title, "title", MAX_TITLE_CHARS, "what failed, as staff and customers read it")
    chosen = _outages(outages)
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await _check_outages_exist(cur, chosen, at)
        await cur.execute(query("incident_reports_insert"), {"title": title, "by": by, "at": at})
        row = await cur.fetchone()
        assert row is not None
        incident_id = int(row[0])
        await _attach(cur, incident_id, chosen, by, at)
        link_ids = sorted({o.link_id for o in chosen})
        await record_work(
            conn,
            at=at,
            actor=by,
            action="incident-opened",
            subject=f"incident:{incident_id}",
            detail=f"{title} ({_listing(chosen)})",
            link_ids=link_ids,
            customer_ids=_customers_of(link_ids, customers),
        )
    found = await incident_report(db, incident_id)
    assert found is not None
    return found


async def add_outages(
    db: Database,
    incident_id: int,
    outages: Sequence[OutageRef],
    *,
    by: str,
    at: datetime,
    customers: Mapping[str, str],
) -> IncidentReport:
    """Add outages to an open incident ("add this outage to incident #N")."""
    chosen = _outages(outages)
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await _lock_open(cur, incident_id)
        await _check_outages_exist(cur, chosen, at)
        added = await _attach(cur, incident_id, chosen, by, at)
        if not added:
            raise IncidentReportError(
                f"incident #{incident_id} holds these outages already", status=409
            )
        link_ids = sorted({o.link_id for o in added})
        await record_work(
            conn,
            at=at,
            actor=by,
            action="incident-outages-added",
            subject=f"incident:{incident_id}",
            detail=_listing(added),
            link_ids=link_ids,
            customer_ids=_customers_of(link_ids, customers),
        )
    found = await incident_report(db, incident_id)
    assert found is not None
    return found


async def _lock_open(cur: psycopg.AsyncCursor[tuple[Any, ...]], incident_id: int) -> None:
    await cur.execute(query("incident_reports_lock"), {"id": incident_id})
    row = await cur.fetchone()
    if row is None:
        raise IncidentReportError(f"there is no incident #{incident_id}", status=404)
    if row[0] is not None:
        raise IncidentReportError(
            f"incident #{incident_id} was closed by {row[1]} at {_utc(row[0])}; open a new "
            "incident for a new failure",
            status=409,
        )


async def post_update(
    db: Database,
    incident_id: int,
    body: str,
    *,
    by: str,
    at: datetime,
    customers: Mapping[str, str],
    close: tuple[str, str] | None = None,
) -> IncidentUpdate:
    """Post an update on an open incident, and with `close` (cause category, cause text)
    close it: stored, in the operations trail, and notified to each customer concerned
    (their links only) and to operations, all in one transaction."""
    body = _text(body, "update", MAX_BODY_CHARS, "what is known, what is being done, when next")
    cause: tuple[str, str] | None = None
    if close is not None:
        category, text = close
        if category not in CAUSE_CATEGORIES:
            raise IncidentReportError(
                f"cause category {category[:40]!r} is not known; use one of "
                f"{', '.join(CAUSE_CATEGORIES)}"
            )
        cause = (category, _text(text, "cause", MAX_CAUSE_CHARS, "what failed, for the record"))
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await _lock_open(cur, incident_id)
        await cur.execute(query("incident_reports_links"), {"id": incident_id})
        link_ids = [str(row[0]) for row in await cur.fetchall()]
        await cur.execute(
            query("incident_reports_post"),
            {
                "id": incident_id,
                "by": by,
                "at": at,
                "body": body,
                "link_ids": link_ids,
                "closes": cause is not None,
            },
        )
        row = await cur.fetchone()
        assert row is not None
        update = IncidentUpdate(
            int(row[0]), incident_id, by, at, body, tuple(link_ids), cause is not None
        )
        if cause is not None:
            await cur.execute(
                query("incident_reports_close"),
                {"id": incident_id, "by": by, "at": at, "category": cause[0], "cause": cause[1]},
            )
        await cur.execute(query("incident_reports_by_ids"), {"ids": [incident_id]})
        own = await cur.fetchone()
        assert own is not None
        title = str(own[1])
        await record_events(cur, update_events(update, title, customers, cause))
        detail = body if cause is None else f"{body} (cause: {cause[0]}: {cause[1]})"
        await record_work(
            conn,
            at=at,
            actor=by,
            action="incident-closed" if cause is not None else "incident-updated",
            subject=f"incident:{incident_id}",
            detail=detail,
            link_ids=link_ids,
            customer_ids=_customers_of(link_ids, customers),
        )
    return update


def update_events(
    update: IncidentUpdate,
    title: str,
    customers: Mapping[str, str],
    cause: tuple[str, str] | None,
) -> list[Event]:
    """The notifications of one update: one per customer concerned, naming only their
    links, then one for operations naming every link. A link no longer configured has
    no customer to tell; operations still read it."""
    per_customer: dict[str, list[str]] = {}
    for link_id in update.link_ids:
        if link_id in customers:
            per_customer.setdefault(customers[link_id], []).append(link_id)
    audiences: list[tuple[str | None, list[str]]] = sorted(per_customer.items())
    audiences.append((None, list(update.link_ids)))
    return [
        Event(
            id=f"incident-update:{update.id}:{customer_id or 'ops'}",
            kind=EventKind.INCIDENT_UPDATE,
            occurred_at=update.posted_at,
            customer_id=customer_id,
            link_id=link_ids[0] if len(link_ids) == 1 else None,
            payload={
                "incident_id": update.incident_id,
                "update_id": update.id,
                "title": title,
                "body": update.body,
                "posted_at": update.posted_at.astimezone(UTC).isoformat(),
                "link_ids": link_ids,
                "closes": update.closes,
                "cause_category": None if cause is None else cause[0],
                "cause_label": None if cause is None else CAUSE_CATEGORIES[cause[0]],
                "cause": None if cause is None else cause[1],
            },
        )
        for customer_id, link_ids in audiences
    ]


# --- reads --------------------------------------------------------------------------


async def incident_report(db: Database, incident_id: int) -> IncidentReport | None:
    found = await _reports(db, [incident_id])
    return found[0] if found else None


async def incident_reports(
    db: Database,
    *,
    since: datetime,
    link_ids: Sequence[str] | None = None,
    limit: int = 200,
) -> list[IncidentReport]:
    """Incidents concerning these links (None: any) that are open, were closed since
    `since` or hold an outage that began since then; newest first, whole (a caller
    narrows them to what its reader may see)."""
    if link_ids is not None and not link_ids:
        return []
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("incident_reports_find"),
            {
                "since": since,
                "link_ids": None if link_ids is None else list(link_ids),
                "limit": limit,
            },
        )
        ids = [int(row[0]) for row in await cur.fetchall()]
    return await _reports(db, ids)


async def _reports(db: Database, ids: Sequence[int]) -> list[IncidentReport]:
    if not ids:
        return []
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("incident_reports_by_ids"), {"ids": list(ids)})
        own = {int(row[0]): row for row in await cur.fetchall()}
        await cur.execute(query("incident_reports_outages_of"), {"ids": list(ids)})
        outages: dict[int, list[IncidentOutage]] = {}
        for incident_id, *rest in await cur.fetchall():
            outages.setdefault(int(incident_id), []).append(IncidentOutage(*rest))
        await cur.execute(query("incident_reports_updates_of"), {"ids": list(ids)})
        updates: dict[int, list[IncidentUpdate]] = {}
        for update_id, incident_id, by, at, body, links, closes in await cur.fetchall():
            updates.setdefault(int(incident_id), []).append(
                IncidentUpdate(int(update_id), int(incident_id), by, at, body, tuple(links), closes)
            )
    return [_report(own[i], outages.get(i, []), updates.get(i, [])) for i in ids if i in own]


def _report(
    row: Sequence[Any], outages: Sequence[IncidentOutage], updates: Sequence[IncidentUpdate]
) -> IncidentReport:
    incident_id, title, opened_by, opened_at, closed_by, closed_at, category, cause = row
    return IncidentReport(
        int(incident_id),
        title,
        opened_by,
        opened_at,
        closed_by,
        closed_at,
        category,
        cause,
        outages=tuple(outages),
        updates=tuple(updates),
    )
