"""Delivering the outbox: events to deliveries to messages sent, at least once.

Each pass routes new events (a delivery row per route that takes the event, in the same
transaction that marks the event routed), then claims the due deliveries for a lease and
sends them. A delivery ends `sent`, `failed` (a permanent refusal, or the retries used
up, with exponential backoff between them) or `suppressed` (with the reason). A process
killed while sending leaves its claimed deliveries pending until the lease ends; they are
then sent again, and the receiver sees the same event id twice and keeps one.

Flap damping: a down message waits `hold_down` and is dropped, with its recovery, when
the outage is over by then; a link with several outages within `flapping.within` waits
`flapping.hold_down` instead. Of a window's budget levels only the highest is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aiohttp
import psycopg
from psycopg.rows import tuple_row

from collector.acknowledgements import acknowledgement
from collector.database import Database
from kernel.config import EVENT_GROUPS, Config, Route, WebhookChannel
from kernel.domain import Event, EventKind
from kernel.errors import DatabaseError
from kernel.formatting import count_of
from notify.channels import DeliveryError, send
from notify.grouping import due_for_operations, grouped_into, was_grouped
from notify.messages import render
from notify.queries import query

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
RECHECK = timedelta(seconds=5)
BATCH = 200
SENDING_AT_ONCE = 16

# Kinds written once per customer concerned and once for operations.
_ONE_FOR_OPS = frozenset((*EVENT_GROUPS["maintenance"], EventKind.INCIDENT_UPDATE))

DeliveryStatus = Literal["pending", "sent", "failed", "suppressed"]


@dataclass(frozen=True, slots=True)
class _Claimed:
    event: Event
    route_id: str
    channel_id: str
    attempts: int  # including this one


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    error: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class PassReport:
    routed: int  # events given their deliveries
    sent: int
    failed: int
    suppressed: int
    retrying: int

    @property
    def busy(self) -> bool:
        return bool(self.routed or self.sent or self.failed or self.suppressed or self.retrying)


def routes_for(
    event: Event, routes: Sequence[Route], told: frozenset[str] = frozenset()
) -> list[Route]:
    """The routes that take `event`: a customer's route only that customer's own events
    (never the monitor's), an operations route every event of its kinds. `told`: routes
    that were sent what the event retracts (a cancelled window's announcement), which
    take the retraction whatever their kinds."""
    if event.kind is EventKind.OUTAGE_ESCALATED:  # for the route it escalates to only
        return [r for r in routes if r.id == event.payload.get("route")]
    chosen = []
    for route in routes:
        if event.kind not in route.kinds() and route.id not in told:
            continue
        if route.customer is not None and route.customer != event.customer_id:
            continue
        if route.customer is None and event.kind in _ONE_FOR_OPS and event.customer_id:
            continue  # operations get the event written for them, not every customer's
        chosen.append(route)
    return chosen


async def _told(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], events: Sequence[Event]
) -> dict[str, frozenset[str]]:
    """For each event that retracts others (`payload["retracts"]`), the routes that were
    sent (or are sending) one of those."""
    retracting = {e.id: _strings(e.payload.get("retracts")) for e in events}
    wanted = sorted({i for ids in retracting.values() for i in ids})
    if not wanted:
        return {}
    await cur.execute(query("deliveries_routes_of"), {"event_ids": wanted})
    routes_of: dict[str, set[str]] = {}
    for event_id, route_id in await cur.fetchall():
        routes_of.setdefault(event_id, set()).add(route_id)
    return {
        event_id: frozenset(r for i in ids for r in routes_of.get(i, ()))
        for event_id, ids in retracting.items()
        if ids
    }


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def backoff(attempts: int, base: timedelta) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base, 2 base, 4 base, ... 1 h."""
    return min(base * (1 << min(max(attempts - 1, 0), 20)), MAX_BACKOFF)


def event_from_row(row: Sequence[Any]) -> Event:
    event_id, kind, occurred_at, customer_id, link_id, payload = row
    if isinstance(payload, str):
        payload = json.loads(payload)
    return Event(event_id, EventKind(kind), occurred_at, customer_id, link_id, payload)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        config: Config,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll: timedelta = timedelta(seconds=1),
    ) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._poll = poll
        self._session: aiohttp.ClientSession | None = None

    def update(self, config: Config) -> None:
        """Take a new config (SIGHUP): routes and channels apply from the next pass."""
        self._config = config

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until `stop`; a database outage only delays delivery."""
        purged_at: datetime | None = None
        async with self._client():
            while not stop.is_set():
                busy = False
                try:
                    busy = (await self.run_once()).busy
                    now = self._clock()
                    if purged_at is None or now - purged_at > timedelta(hours=1):
                        await self._purge(now)
                        purged_at = now
                except DatabaseError as exc:
                    log.warning("notifications waiting, database unavailable cause=%s", exc)
                    await _wait(stop, 5.0)
                    continue
                if not busy:
                    await _wait(stop, self._poll.total_seconds())

    @contextlib.asynccontextmanager
    async def _client(self) -> Any:
        async with aiohttp.ClientSession() as session:
            self._session = session
            try:
                yield session
            finally:
                self._session = None

    async def run_once(self) -> PassReport:
        """Route new events, then send what is due; for the daemon and for tests."""
        if self._session is None:
            async with self._client():
                return await self.run_once()
        routed = await self.route_new()
        counts = {"sent": 0, "failed": 0, "suppressed": 0, "pending": 0}
        semaphore = asyncio.Semaphore(SENDING_AT_ONCE)

        async def deliver(item: _Claimed) -> None:
            try:
                async with semaphore:
                    outcome = await self._deliver(item)
                await self._finish(item, outcome)
            except DatabaseError as exc:
                # Still claimed: due again when the lease ends (sent twice at worst).
                log.warning(
                    "notification outcome not recorded event=%s cause=%s", item.event.id, exc
                )
                return
            counts[outcome.status] += 1

        async with asyncio.TaskGroup() as group:
            for item in await self._claim():
                group.create_task(deliver(item), name=f"deliver {item.event.id}")
        return PassReport(
            routed, counts["sent"], counts["failed"], counts["suppressed"], counts["pending"]
        )

    # --- routing ----------------------------------------------------------------------

    async def route_new(self) -> int:
        """Give every new event its deliveries; return how many events were routed."""
        now = self._clock()
        notifications = self._config.notifications
        async with self._db.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(query("events_unrouted"), {"limit": BATCH * 5})
            events = [event_from_row(row) for row in await cur.fetchall()]
            if not events:
                return 0
            rows: list[tuple[str, str, str, datetime]] = []
            told = await _told(cur, events)
            for event in events:
                routes = routes_for(event, notifications.routes, told.get(event.id, frozenset()))
                if not routes:
                    continue
                due = await self._due(cur, event, now)
                rows += [
                    (event.id, r.id, r.channel, due_for_operations(event, r, due, self._config))
                    for r in routes
                ]
            if rows:
                await cur.execute(
                    query("deliveries_insert"),
                    {
                        "event_ids": [r[0] for r in rows],
                        "route_ids": [r[1] for r in rows],
                        "channel_ids": [r[2] for r in rows],
                        "due": [r[3] for r in rows],
                        "now": now,
                    },
                )
            await cur.execute(
                query("events_mark_routed"), {"ids": [e.id for e in events], "now": now}
            )
        log.debug("notifications routed events=%d deliveries=%d", len(events), len(rows))
        return len(events)

    async def _due(
        self, cur: psycopg.AsyncCursor[tuple[Any, ...]], event: Event, now: datetime
    ) -> datetime:
        """When a new delivery is first due: down messages wait their hold-down."""
        if event.kind is not EventKind.LINK_DOWN:
            return now
        notifications = self._config.notifications
        flapping = notifications.flapping
        await cur.execute(
            query("link_outages_since"),
            {
                "link_id": event.link_id,
                "since": event.occurred_at - flapping.within,
                "until": event.occurred_at,
            },
        )
        row = await cur.fetchone()
        earlier = int(row[0]) if row else 0
        hold = notifications.hold_down
        if earlier + 1 >= flapping.outages:
            hold = max(hold, flapping.hold_down)
            log.info(
                "link flapping, down message held link=%s outages=%d within=%s hold=%s",
                event.link_id,
                earlier + 1,
                flapping.within,
                hold,
            )
        return max(now, event.occurred_at + hold)

    # --- delivering -------------------------------------------------------------------

    async def _claim(self) -> list[_Claimed]:
        now = self._clock()
        async with self._db.connection() as conn, conn.transaction():
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(
                query("deliveries_claim"),
                {"now": now, "limit": BATCH, "lease_until": now + self._lease()},
            )
            rows = await cur.fetchall()
        return [
            _Claimed(event_from_row((row[0], *row[4:])), row[1], row[2], row[3]) for row in rows
        ]

    def _lease(self) -> timedelta:
        """Long enough for any channel's send to finish or time out, twice over."""
        timeouts = [
            c.timeout if isinstance(c, WebhookChannel) else c.smtp.timeout
            for c in self._config.notifications.channels
        ]
        return 2 * max(timeouts, default=timedelta(seconds=30)) + timedelta(seconds=5)

    async def _deliver(self, item: _Claimed) -> _Outcome:
        now = self._clock()
        notifications = self._config.notifications
        route = next((r for r in notifications.routes if r.id == item.route_id), None)
        if route is None or route.channel not in {c.id for c in notifications.channels}:
            return _Outcome("suppressed", item.attempts, now, note="route no longer configured")
        held = await self._held_back(item, now)
        if held is not None:
            return held
        if item.attempts == 1:  # decided once: a retry of a message sent alone goes alone
            async with self._db.connection() as conn:
                cur = conn.cursor(row_factory=tuple_row)
                grouped = await grouped_into(cur, item.event, route, self._config)
            if grouped is not None:
                return _Outcome("suppressed", item.attempts, now, note=grouped)
        channel = notifications.channel(route.channel)
        try:
            message = render(item.event, self._config)
        except Exception as exc:
            # A message that cannot be written must not stop every other one.
            log.exception("notification cannot be rendered event=%s", item.event.id)
            return _Outcome("failed", item.attempts, now, error=f"cannot be rendered: {exc!r}")
        try:
            assert self._session is not None
            await send(channel, item.event, message, session=self._session, to=route.to)
        except DeliveryError as exc:
            return self._failure(item, now, str(exc), permanent=exc.permanent)
        log.info(
            "notification sent event=%s route=%s channel=%s attempt=%d",
            item.event.id,
            item.route_id,
            route.channel,
            item.attempts,
        )
        return _Outcome("sent", item.attempts, now)

    def _failure(self, item: _Claimed, now: datetime, error: str, *, permanent: bool) -> _Outcome:
        retries = self._config.notifications.retries
        if permanent or item.attempts > retries:
            why = (
                "refused for good"
                if permanent
                else f"gave up after {count_of(item.attempts, 'attempt')}"
            )
            log.warning(
                "notification failed event=%s route=%s %s error=%s",
                item.event.id,
                item.route_id,
                why,
                error,
            )
            return _Outcome("failed", item.attempts, now, error=error)
        wait = backoff(item.attempts, self._config.notifications.retry_backoff)
        log.info(
            "notification not delivered, retrying event=%s route=%s attempt=%d in=%s error=%s",
            item.event.id,
            item.route_id,
            item.attempts,
            wait,
            error,
        )
        return _Outcome("pending", item.attempts, now + wait, error=error)

    async def _held_back(self, item: _Claimed, now: datetime) -> _Outcome | None:
        """Why not to send this one now (suppressed, or later), or None to send it."""
        event = item.event
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            if event.kind is EventKind.LINK_DOWN and item.attempts == 1:
                # Decided when the hold-down ends; a retry of a down message the
                # receiver did not take still goes, and its recovery after it.
                recovered = event.id.replace("link-down:", "link-recovered:", 1)
                await cur.execute(query("event_exists"), {"id": recovered})
                row = await cur.fetchone()
                if row is not None and row[0]:
                    return _Outcome(
                        "suppressed",
                        item.attempts,
                        now,
                        note="over before its hold-down ended: neither message is sent",
                    )
            elif event.kind is EventKind.LINK_RECOVERED:
                down = event.id.replace("link-recovered:", "link-down:", 1)
                await cur.execute(
                    query("delivery_status"), {"event_id": down, "route_id": item.route_id}
                )
                row = await cur.fetchone()
                if row is not None and row[0] == "suppressed" and not was_grouped(row[2]):
                    return _Outcome(
                        "suppressed", item.attempts, now, note="its down message was not sent"
                    )
                if row is not None and row[0] == "pending":
                    # The down message goes first: look again once it is due, or soon
                    # when it is being sent (due, then, only when its lease ends).
                    later = min(max(row[1], now), now + RECHECK) + timedelta(seconds=1)
                    return _Outcome("pending", item.attempts - 1, later)
            elif event.kind is EventKind.OUTAGE_ESCALATED and event.link_id is not None:
                # Escalating stops at an acknowledgement or the outage's end, also for a
                # message still on its way (a receiver that was down is retried later).
                since = datetime.fromisoformat(str(event.payload["down_since"]))
                ack = await acknowledgement(self._db, event.link_id, since)
                if ack is not None:
                    return _Outcome(
                        "suppressed",
                        item.attempts,
                        now,
                        note=f"acknowledged by {ack.by} before it got through",
                    )
                recovered = f"link-recovered:{event.link_id}:{since.astimezone(UTC).isoformat()}"
                await cur.execute(query("event_exists"), {"id": recovered})
                row = await cur.fetchone()
                if row is not None and row[0]:
                    return _Outcome(
                        "suppressed", item.attempts, now, note="over before it got through"
                    )
            elif event.kind is EventKind.BUDGET:
                await cur.execute(query("budget_highest_level"), {"key": event.payload.get("key")})
                row = await cur.fetchone()
                level = int(str(event.payload.get("level", 0)))
                if row is not None and row[0] is not None and int(row[0]) > level:
                    return _Outcome(
                        "suppressed", item.attempts, now, note=f"superseded by the {row[0]} % level"
                    )
        return None

    async def _finish(self, item: _Claimed, outcome: _Outcome) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                query("deliveries_finish"),
                {
                    "event_id": item.event.id,
                    "route_id": item.route_id,
                    "status": outcome.status,
                    "attempts": outcome.attempts,
                    "next_attempt_at": outcome.next_attempt_at,
                    "last_error": outcome.error,
                    "note": outcome.note,
                    "now": self._clock(),
                },
            )

    async def _purge(self, now: datetime) -> None:
        async with self._db.connection() as conn:
            cur = await conn.execute(
                query("events_purge"), {"before": now - self._config.database.retention}
            )
            if cur.rowcount:
                log.info("old notification events removed events=%d", cur.rowcount)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
