"""Events that follow from time passing rather than from a new sample: error-budget
levels crossed, windows closed below target, maintenance announced, starting and over,
and links the monitor has been unable to measure for a while.

Each pass computes what is true now and writes the events for it under ids that the
same fact always gets, so passes may repeat, overlap or run in two processes and each
event is still stored once. Only current facts count: a history loaded or a daemon
started after a long pause announces nothing from the distant past.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg.rows import tuple_row

from collector import current_link_states, maintenance_windows
from collector.database import Database
from collector.outbox import store_events
from collector.site_record import recent_blind_spans
from kernel.config import EVENT_GROUPS, Config
from kernel.domain import Event, EventKind, LinkStatus, MaintenanceWindow
from kernel.errors import DatabaseError
from notify.escalation import escalates, escalation_events
from notify.queries import query
from notify.restore_events import restore_events
from sla.compute import seconds, truncate_pct
from sla.ledger import LedgerRow, TimeRange, list_rows, recent_range, window_labels
from sla.report import ContractWindow, contract_windows

log = logging.getLogger(__name__)

BREACH_NOTICE_HORIZON = timedelta(days=7)  # windows closed longer ago are not announced
FINISHED_HORIZON = timedelta(hours=1)
CANCELLED_HORIZON = timedelta(days=1)  # a cancellation older than this is not announced
MAINTENANCE_AHEAD = timedelta(days=400)
_MAINTENANCE = frozenset(EVENT_GROUPS["maintenance"])


class Evaluator:
    def __init__(
        self,
        db: Database,
        config: Config,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        # Right after a start every link looks unmeasured since the last run stopped;
        # blind spots count only once the probes have had `unknown_after` to report.
        self._started = clock()

    def update(self, config: Config) -> None:
        self._config = config

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.evaluate_once()
            except DatabaseError as exc:
                log.warning("notification evaluation skipped, database unavailable cause=%s", exc)
            with contextlib.suppress(TimeoutError):
                every = self._config.notifications.evaluate_every.total_seconds()
                await asyncio.wait_for(stop.wait(), every)

    async def evaluate_once(self) -> int:
        """Write the events of what is true now; return how many were new."""
        now = self._clock()
        # Only what some route takes: each part reads the database, and the budgets and
        # blind spots compute every contract's window and every link's state.
        wanted = {kind for route in self._config.notifications.routes for kind in route.kinds()}
        events: list[Event] = []
        if EventKind.BUDGET in wanted:
            events += await self._budgets(now)
        if EventKind.SLA_BREACHED in wanted:
            events += await self._breaches(now)
        if wanted & _MAINTENANCE:
            events += await self._maintenance(now)
        if EventKind.MONITOR_BLIND in wanted:
            events += await self._blind(now)
        if wanted & {EventKind.SITE_BLIND, EventKind.SITE_RECOVERED}:
            events += await self._sites(now)
        if wanted & {EventKind.RESTORE_WARNING, EventKind.RESTORE_OVERDUE}:
            events += await restore_events(self._db, self._config, now)
        if escalates(self._config):
            events += await escalation_events(self._db, self._config, now)
        written = await store_events(self._db, events)
        if written:
            log.info("notification events written events=%d", written)
        return written

    # --- error budgets ----------------------------------------------------------------

    async def _budgets(self, now: datetime) -> list[Event]:
        labels = window_labels(self._config, TimeRange(now - timedelta(seconds=1), now), now)
        events = []
        for label in labels:
            for item in await contract_windows(self._db, self._config, label, now):
                window = item.result.window
                if not window.start <= now < window.end:
                    continue  # another zone's window of the same label
                events += [_budget_event(item, label, level, now) for level in item.result.warnings]
        return events

    # --- breaches ---------------------------------------------------------------------

    async def _breaches(self, now: datetime) -> list[Event]:
        events = []
        for label in window_labels(self._config, recent_range(self._config, now), now):
            rows = await list_rows(self._db, window=label, status=["closed", "approved", "applied"])
            for row in rows:
                if row.kind != "window" or row.met is not False:
                    continue
                if row.closes_at < now - BREACH_NOTICE_HORIZON:
                    continue
                events.append(_breach_event(row, now))
        return events

    # --- maintenance ------------------------------------------------------------------

    async def _maintenance(self, now: datetime) -> list[Event]:
        windows = await maintenance_windows(
            self._db, now - FINISHED_HORIZON, now + MAINTENANCE_AHEAD
        )
        events = []
        for window in windows:
            if window.cancelled_at is not None:
                events += await self._cancelled(window, now)
                continue
            stage = _stage(window, now)
            if stage is None:
                continue
            kind, occurred_at = stage
            for customer_id, link_ids in self._audiences(window):
                events.append(_maintenance_event(window, kind, occurred_at, customer_id, link_ids))
        return events

    async def _cancelled(self, window: MaintenanceWindow, now: datetime) -> list[Event]:
        """A withdrawn (or early stopped) window: a notice for each audience that was told
        of it (announced or started), naming what it retracts so that it reaches the
        routes those went to; nothing for an audience never told."""
        assert window.cancelled_at is not None
        if not now - CANCELLED_HORIZON <= window.cancelled_at <= now:
            return []
        told_kinds = (EventKind.MAINTENANCE_ANNOUNCED, EventKind.MAINTENANCE_STARTED)
        audiences = self._audiences(window)
        told = {
            customer_id: [
                _maintenance_event(window, kind, now, customer_id, link_ids).id
                for kind in told_kinds
            ]
            for customer_id, link_ids in audiences
        }
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            ids = [event_id for ids in told.values() for event_id in ids]
            await cur.execute(query("events_existing"), {"ids": ids})
            existing = {row[0] for row in await cur.fetchall()}
        events = []
        for customer_id, link_ids in audiences:
            retracts = [i for i in told[customer_id] if i in existing]
            if retracts:
                kind, at = EventKind.MAINTENANCE_CANCELLED, window.cancelled_at
                event = _maintenance_event(window, kind, at, customer_id, link_ids)
                events.append(replace(event, payload={**event.payload, "retracts": retracts}))
        return events

    def _audiences(self, window: MaintenanceWindow) -> list[tuple[str | None, list[str]]]:
        """(customer, their links it covers) for each customer concerned, then operations
        (None) with every link it covers."""
        config = self._config
        covers = [
            link
            for link in config.links
            if (not window.link_ids and not window.customer_ids)
            or link.id in window.link_ids
            or link.customer in window.customer_ids
        ]
        per_customer: dict[str, list[str]] = {}
        for link in covers:
            per_customer.setdefault(link.customer, []).append(link.id)
        for customer_id in window.customer_ids:
            per_customer.setdefault(customer_id, [])
        audiences: list[tuple[str | None, list[str]]] = sorted(per_customer.items())
        audiences.append((None, [link.id for link in covers]))
        return audiences

    # --- the monitor's own blind spots ------------------------------------------------

    async def _blind(self, now: datetime) -> list[Event]:
        after = self._config.notifications.unknown_after
        if now - self._started < after:
            return []
        states = await current_link_states(self._db, self._config.links, now)
        blind = {
            (state.link_id, state.since.isoformat())
            for state in states
            if state.status is LinkStatus.UNKNOWN
            and state.since is not None
            and now - state.since >= after
        }
        if not blind:
            return []
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(query("monitor_blind_latest"))
            row = await cur.fetchone()
        previous = set()
        if row is not None:
            payload: dict[str, Any] = row[0]
            previous = {(e["link_id"], e["since"]) for e in payload.get("links", [])}
        new = sorted(blind - previous)
        if not new:
            return []
        digest = hashlib.sha256(repr(new).encode()).hexdigest()[:16]
        listed = sorted(blind, key=lambda e: (e[1], e[0]))
        return [
            Event(
                id=f"monitor-blind:{digest}",
                kind=EventKind.MONITOR_BLIND,
                occurred_at=now,
                customer_id=None,
                payload={
                    "count": len(blind),
                    "new": len(new),
                    "links": [{"link_id": link, "since": since} for link, since in listed],
                },
            )
        ]

    # --- the site's canaries ----------------------------------------------------------

    async def _sites(self, now: datetime) -> list[Event]:
        """A blind span that has lasted `hold_down` is news while it lasts, and so is its
        end: one event each, whose id is the span's, so each is written once however
        often this runs. A span found over already is told by its end alone (which says
        when it began), so the two never race each other to the reader. Spans that ended
        over a day ago are history, not news."""
        hold = self._config.notifications.hold_down
        events = []
        for span in await recent_blind_spans(self._db, now - timedelta(days=1)):
            lasted = (span.ends_at or now) - span.starts_at
            if lasted < hold:
                continue
            key = f"{span.site_id}:{span.starts_at.isoformat()}"
            facts: dict[str, object] = {
                "site_id": span.site_id,
                "since": span.starts_at.isoformat(),
                "reason": span.reason,
            }
            if span.ends_at is None:
                events.append(
                    Event(
                        f"site-blind:{key}",
                        EventKind.SITE_BLIND,
                        span.starts_at,
                        None,
                        payload=facts,
                    )
                )
                continue
            ended = {**facts, "until": span.ends_at.isoformat()}
            ended["blind_s"] = int(lasted.total_seconds())
            events.append(
                Event(
                    f"site-recovered:{key}",
                    EventKind.SITE_RECOVERED,
                    span.ends_at,
                    None,
                    payload=ended,
                )
            )
        return events


def _budget_event(item: ContractWindow, label: str, level: int, now: datetime) -> Event:
    result = item.result
    key = f"{item.contract.id}:{item.subject.id}:{label}"
    link_id = item.subject.link_ids[0] if len(item.subject.link_ids) == 1 else None
    used = truncate_pct(result.budget_used, 2)
    return Event(
        id=f"budget:{key}:{level}",
        kind=EventKind.BUDGET,
        occurred_at=now,
        customer_id=item.customer_id,
        link_id=link_id,
        payload={
            "key": key,
            "level": level,
            "contract_id": item.contract.id,
            "subject_id": item.subject.id,
            "window": label,
            "window_start": result.window.start.astimezone(UTC).isoformat(),
            "window_end": result.window.end.astimezone(UTC).isoformat(),
            "budget_s": str(seconds(result.budget_us)),
            "budget_remaining_s": str(max(seconds(result.budget_remaining_us), Decimal(0))),
            "budget_used_pct": str(used),
            "down_s": str(seconds(result.down_us)),
            "availability_pct": _str(truncate_pct(result.availability)),
            "target_pct": str(truncate_pct(result.target)),
        },
    )


def _breach_event(row: LedgerRow, now: datetime) -> Event:
    return Event(
        id=f"sla-breached:{row.contract_id}:{row.subject_id}:{row.window_label}",
        kind=EventKind.SLA_BREACHED,
        occurred_at=min(row.closes_at, now),
        customer_id=row.customer_id,
        link_id=None if row.subject_id.startswith("group:") else row.subject_id,
        payload={
            "contract_id": row.contract_id,
            "subject_id": row.subject_id,
            "window": row.window_label,
            "window_start": row.window_start.astimezone(UTC).isoformat(),
            "availability_pct": _str(row.availability_pct),
            "target_pct": str(row.target_pct),
            "down_s": str(row.down_s),
            "incidents": row.incidents,
            "credit_amount": str(row.credit_amount),
            "credit_pct": str(row.credit_pct),
            "currency": row.currency,
            "credit_status": row.status,
            "invoice_ref": row.invoice_ref,
            "closes_at": row.closes_at.astimezone(UTC).isoformat(),
            "ledger_id": row.id,
        },
    )


def _stage(window: MaintenanceWindow, now: datetime) -> tuple[EventKind, datetime] | None:
    if now < window.starts_at:
        return EventKind.MAINTENANCE_ANNOUNCED, min(window.announced_at, now)
    if now < window.ends_at:
        return EventKind.MAINTENANCE_STARTED, window.starts_at
    if now < window.ends_at + FINISHED_HORIZON:
        return EventKind.MAINTENANCE_FINISHED, window.ends_at
    return None


def _maintenance_event(
    window: MaintenanceWindow,
    kind: EventKind,
    occurred_at: datetime,
    customer_id: str | None,
    link_ids: list[str],
) -> Event:
    # A window moved to another time is announced again: its start is part of the id,
    # and so is its sequence once rescheduled (a move of its end alone is news too).
    audience = customer_id or "ops"
    start = window.starts_at.astimezone(UTC).isoformat()
    moved = f"#{window.sequence}" if window.sequence else ""
    return Event(
        id=f"{kind.value}:{window.id}:{start}{moved}:{audience}",
        kind=kind,
        occurred_at=occurred_at,
        customer_id=customer_id,
        payload={
            "maintenance_id": window.id,
            "description": window.description,
            "starts_at": window.starts_at.astimezone(UTC).isoformat(),
            "ends_at": window.ends_at.astimezone(UTC).isoformat(),
            "announced_at": window.announced_at.astimezone(UTC).isoformat(),
            "cancelled_at": None
            if window.cancelled_at is None
            else window.cancelled_at.astimezone(UTC).isoformat(),
            "link_ids": link_ids,
            "reference": window.reference,
            "impact": window.impact,
            "sequence": window.sequence,
        },
    )


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
