"""The credit ledger: what billing approves, applies and exports, and who did it when.

One `window` row per contract, subject (a link, or `group:<contract>`) and window, moving
open (window running, or ended less than its grace ago) -> closed -> approved (by a
billing user) -> applied (exported to billing, with an invoice reference). Open and closed
rows follow the data: `refresh_ledger` recomputes them from stored states. Approved and
applied rows never change: when a recomputation gives a different credit, an `adjustment`
row carries the difference, the new figures and the reason, and goes through its own
approval; when later data brings the difference back to zero before it is approved,
the adjustment is `withdrawn` (final, crediting nothing) rather than left as a +0.00 for
someone to approve. A billing user may also correct a settled row by hand (`adjust`): a
manual adjustment with its amount and reason, approved like any other, which
recomputation neither rewrites nor counts as computed credit. Every status change and
every adjustment is written to `ledger_audit`.

A row whose coverage is under the review floor (`ledger.review_coverage_below`) or the
contract's `min_coverage` carries its `review_reason`: under min_coverage no credit is
computed automatically, and approving a flagged row takes the approver's note.

This module must never update a settled row's figures, never delete a row, and never
let two writers interleave: every write runs in one transaction under one advisory lock
(and the database's own trigger refuses what slips past, see 005_ledger.sql and
011_ledger_review.sql). Money is `Decimal` in the currency's minor units, never a float.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb

from collector import Database
from linkwatch.config import Config
from linkwatch.errors import LinkwatchError
from linkwatch.formatting import count_of
from linkwatch.money import minor_units, quantise
from sla.queries import query
from sla.records import FIELDS, record, window_status
from sla.report import ContractWindow, compute_plan, monitoring_began, plan_windows, subjects
from sla.windows import WindowKind, parse_window, window_containing

log = logging.getLogger(__name__)

Status = Literal["open", "closed", "approved", "applied", "withdrawn"]
Kind = Literal["window", "adjustment"]
STATUSES: tuple[Status, ...] = ("open", "closed", "approved", "applied", "withdrawn")
SETTLED: tuple[Status, ...] = ("approved", "applied")
UNSETTLED: tuple[Status, ...] = ("open", "closed")  # following the data; withdrawn is final
SYSTEM = "system"  # the actor of automatic recomputation; never approves or applies

# Any constant no other application on the database uses: "LNKLEDG".
_LOCK_KEY = 0x4C4E4B4C454447

# Report record fields stored in a column of their own: the ones billing relies on. Any
# field the record gains later is kept in `extra_figures` under its record name.
_TIMES = ("window_start", "window_end")
_NUMBERS = (
    "window_s", "excluded_s", "unknown_s", "down_s", "eligible_s", "coverage_pct",
    "availability_pct", "target_pct", "budget_s", "budget_used_pct", "credit_pct",
    "credit_amount",
)  # fmt: skip
_PLAIN = ("met", "incidents", "credit_steps", "currency")
_IDENTITY = {"contract": "contract_id", "customer": "customer_id", "link": "subject_id"}
_REVIEW = ("needs_review", "review_reason")  # the review_reason column (NULL: no review)
_COLUMN_FIELDS = frozenset((*_IDENTITY, "window", *_TIMES, *_NUMBERS, *_PLAIN, *_REVIEW, "status"))

# The ledger's own fields in the billing export. Times in the customer's zone (named in
# `timezone`) and, for billing systems that want one offset throughout, in UTC.
LEDGER_FIELDS = (
    "id", "kind", "parent", "amount", "reason", "invoice_ref", "approved_by", "approved_at",
    "applied_by", "applied_at",
    # Added after the first release: appended.
    "approval_note", "approved_at_utc", "applied_at_utc", "timezone",
)  # fmt: skip
# The export's columns as first released: the record's fields of the time, then the
# ledger's own. Whatever either gains later comes after them, so positional readers of
# the file keep working.
_FIRST_EXPORT = (
    *FIELDS[: FIELDS.index("objectives_met") + 1],
    *LEDGER_FIELDS[: LEDGER_FIELDS.index("applied_at") + 1],
)


class LedgerError(LinkwatchError):
    """A ledger request the user can fix: an unknown row, a step out of order."""

    exit_code = 2


# --- rows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One ledger row as stored; times are in the customer's zone."""

    id: int
    kind: Kind
    parent_id: int | None
    status: Status
    contract_id: str
    customer_id: str
    subject_id: str
    window_label: str
    window_start: datetime
    window_end: datetime
    timezone: str
    measured_until: datetime
    closes_at: datetime
    window_s: Decimal
    excluded_s: Decimal
    unknown_s: Decimal
    down_s: Decimal
    eligible_s: Decimal
    coverage_pct: Decimal
    availability_pct: Decimal | None
    target_pct: Decimal
    met: bool | None
    budget_s: Decimal
    budget_used_pct: Decimal | None
    incidents: int
    credit_steps: int
    credit_pct: Decimal
    credit_amount: Decimal
    currency: str
    extra_figures: Mapping[str, Any]
    amount: Decimal  # what this row credits: the credit, or an adjustment's difference
    reason: str | None
    created_by: str
    created_at: datetime
    computed_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    applied_by: str | None
    applied_at: datetime | None
    invoice_ref: str | None
    review_reason: str | None  # why a person must look before approving; None: no need
    approval_note: str | None  # what the approver checked (required when flagged)

    @property
    def needs_review(self) -> bool:
        return self.review_reason is not None

    def describe(self) -> str:
        """How a person names the row: `#12 acme-gold acme-hq 2026-W47`."""
        what = f"#{self.id} {self.contract_id} {self.subject_id} {self.window_label}"
        return what if self.kind == "window" else f"{what} (adjustment of #{self.parent_id})"

    def local(self, moment: datetime | None) -> str | None:
        return None if moment is None else moment.astimezone(ZoneInfo(self.timezone)).isoformat()

    def record(self) -> dict[str, Any]:
        """The report record's fields (same names and formats) plus LEDGER_FIELDS."""
        out: dict[str, Any] = {name: self.extra_figures.get(name) for name in FIELDS}
        out.update(
            contract=self.contract_id,
            customer=self.customer_id,
            link=self.subject_id,
            window=self.window_label,
            window_start=self.local(self.window_start),
            window_end=self.local(self.window_end),
            status=self.status,
        )
        for name in _NUMBERS:
            value: Decimal | None = getattr(self, name)
            # Seconds are numbers in the record; percentages and money decimal strings.
            if name.endswith("_s"):
                out[name] = value
            else:
                out[name] = None if value is None else f"{value:f}"
        for name in _PLAIN:
            out[name] = getattr(self, name)
        out.update(
            needs_review=self.needs_review,
            review_reason=self.review_reason,
            id=self.id,
            kind=self.kind,
            parent=self.parent_id,
            amount=f"{self.amount:f}",
            reason=self.reason,
            invoice_ref=self.invoice_ref,
            approved_by=self.approved_by,
            approved_at=self.local(self.approved_at),
            applied_by=self.applied_by,
            applied_at=self.local(self.applied_at),
            approval_note=self.approval_note,
            approved_at_utc=_utc(self.approved_at),
            applied_at_utc=_utc(self.applied_at),
            timezone=self.timezone,
        )
        return out


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


_ROW_FIELDS = tuple(f.name for f in fields(LedgerRow))


def _row(values: Mapping[str, Any]) -> LedgerRow:
    zone = ZoneInfo(values["timezone"])
    data = {name: values[name] for name in _ROW_FIELDS}
    data["window_start"] = values["window_start"].astimezone(zone)
    data["window_end"] = values["window_end"].astimezone(zone)
    return LedgerRow(**data)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ledger_id: int
    at: datetime
    actor: str
    action: str  # created, recomputed, closed, approved, applied, adjusted, withdrawn
    from_status: Status | None
    to_status: Status
    detail: str


# --- which windows -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Every contract window overlapping [start, end) that has begun by `now`."""

    start: datetime
    end: datetime


def window_labels(config: Config, span: TimeRange, now: datetime) -> list[str]:
    """Labels of the windows, in the zones of the contracts, that overlap `span` and have
    begun by `now` in some zone. A label begun in one zone may lie ahead in another:
    `plan_windows` computes each contract only over a window begun in its own zone."""
    end = min(span.end, now)
    labels: set[str] = set()
    if span.start >= end:
        return []
    kinds: tuple[WindowKind, ...] = ("week", "month")
    for zone in {config.customer(c.customer).tz for c in config.contracts}:
        for kind in kinds:
            window = window_containing(kind, zone, span.start)
            while window.start < end:
                labels.add(window.label)
                window = window.next()
    return sorted(labels)


def samples_range(config: Config, first: datetime, last: datetime) -> TimeRange:
    """The windows that samples observed in [first, last] can change: states reach back
    to the first sample of a confirmed outage and forward to the last one's staleness."""
    margin = max(
        (p.confirm * p.interval + p.stale_after_effective for link in config.links
         for p in link.probes),
        default=timedelta(0),
    )  # fmt: skip
    return TimeRange(first - margin, last + margin)


def recent_range(config: Config, now: datetime) -> TimeRange:
    """The windows whose rows may still be open: the running one and those in grace."""
    grace = max(
        (t.grace for c in config.contracts if (t := c.terms_at(now, config.plans)) is not None),
        default=timedelta(0),
    )
    # A month is the longest window: its start lies at most 31 days before its end.
    return TimeRange(now - grace - timedelta(days=32), now)


def running_labels(config: Config, now: datetime) -> list[str]:
    """The labels of the week and month running at `now` in each contract zone."""
    kinds: tuple[WindowKind, ...] = ("week", "month")
    zones = {config.customer(c.customer).tz for c in config.contracts}
    return sorted({window_containing(kind, zone, now).label for zone in zones for kind in kinds})


async def history_range(db: Database, now: datetime) -> TimeRange | None:
    """From the oldest stored sample to now; None when nothing is stored."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("ledger_first_sample"))
        row = await cur.fetchone()
    if row is None or row[0] is None:
        return None
    return TimeRange(row[0], now)


# --- refresh -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerRefresh:
    windows: tuple[str, ...]  # labels computed for at least one contract
    created: int  # new window rows
    recomputed: int  # open or closed rows with new figures
    closed: int  # rows that passed their grace now
    unchanged: int
    adjustments: tuple[int, ...]  # ids of adjustment rows written (new or recomputed)
    orphaned: int  # open rows whose contract or subject is no longer configured
    withdrawn: tuple[int, ...] = ()  # adjustments whose difference came back to zero

    def __add__(self, other: LedgerRefresh) -> LedgerRefresh:
        """Two refreshes (of slices of the contracts, say) as one."""
        return LedgerRefresh(
            windows=tuple(sorted({*self.windows, *other.windows})),
            created=self.created + other.created,
            recomputed=self.recomputed + other.recomputed,
            closed=self.closed + other.closed,
            unchanged=self.unchanged + other.unchanged,
            adjustments=self.adjustments + other.adjustments,
            orphaned=self.orphaned + other.orphaned,
            withdrawn=self.withdrawn + other.withdrawn,
        )

    def summary(self) -> str:
        text = (
            f"ledger: {count_of(len(self.windows), 'window')} computed, "
            f"{count_of(self.created, 'row')} new, {self.recomputed} recomputed, "
            f"{self.closed} closed, {self.unchanged} unchanged, "
            f"{count_of(len(self.adjustments), 'adjustment')}"
        )
        if self.adjustments:
            text += " (" + ", ".join(f"#{i}" for i in self.adjustments) + ")"
        if self.withdrawn:
            text += (
                f", {len(self.withdrawn)} withdrawn ("
                + ", ".join(f"#{i}" for i in self.withdrawn)
                + ")"
            )
        if self.orphaned:
            text += f"; {count_of(self.orphaned, 'open row')} no longer in the config"
        return text


async def refresh_ledger(
    db: Database,
    config: Config,
    labels_or_range: Sequence[str] | TimeRange,
    now: datetime,
    *,
    actor: str = SYSTEM,
    contract_ids: Collection[str] | None = None,
) -> LedgerRefresh:
    """Recompute the ledger for some windows (labels, or every window of a time range),
    for every contract or only those in `contract_ids`.

    A contract gets a row for a window only once the window has begun in its own zone
    and its links were measured before the window ended (`plan_windows`); a row that
    exists is recomputed whenever its window is. Open and closed rows take the new
    figures (and close once past their grace); a settled row whose credit differs from
    what was settled for it (the row plus its settled adjustments) gets an adjustment
    row, or its pending one is recomputed (or withdrawn, when the difference is gone).
    Runs as one transaction under the ledger lock: all of it or nothing.
    """
    if isinstance(labels_or_range, TimeRange):
        requested = window_labels(config, labels_or_range, now)
    else:
        requested = list(labels_or_range)
        for label in requested:
            parse_window(label, ZoneInfo("UTC"))  # ValueError for a bad label
    wanted = None if contract_ids is None else frozenset(contract_ids)
    contracts = [c for c in config.contracts if wanted is None or c.id in wanted]
    began = await monitoring_began(db, list(dict.fromkeys(i for c in contracts for i in c.links)))
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query("ledger_lock"), {"key": _LOCK_KEY})
        # Rows still open past their grace get their final recomputation before closing,
        # whatever windows the caller asked for.
        await cur.execute(query("ledger_overdue_labels"), {"now": now})
        overdue = [r["window_label"] for r in await cur.fetchall()]
        labels = sorted(set(requested) | set(overdue))
        await cur.execute(
            query("ledger_rows_for_labels"),
            {"labels": labels, "contract_ids": None if wanted is None else sorted(wanted)},
        )
        rows = [_row(r) for r in await cur.fetchall()]
        has_row = {(r.contract_id, r.window_label) for r in rows if r.kind == "window"}
        # Computed under the lock (on other pooled connections) so that a computation
        # never lands after a newer one.
        items: list[ContractWindow] = []
        for label in labels:
            plan = plan_windows(config, label, now, contract_ids=wanted, monitored_from=began)
            # The monitoring rule decides which rows are made, never which are kept up
            # to date: a row made before it (or before retention removed the first
            # data) still follows the data.
            kept = [p for p in plan.unmonitored if (p.contract.id, label) in has_row]
            items += await compute_plan(
                db, config, replace(plan, todo=plan.todo + tuple(kept)), now
            )
        by_key: dict[tuple[str, str, str], list[LedgerRow]] = {}
        for row in rows:
            by_key.setdefault((row.contract_id, row.subject_id, row.window_label), []).append(row)
        writer = _Writer(cur, config, now, actor)
        for item in items:
            key = (item.contract.id, item.subject.id, item.result.window.label)
            await writer.write(item, by_key.get(key, []))
        await writer.flush()
    orphaned = 0 if contract_ids is not None else _orphans(config, rows)
    result = LedgerRefresh(
        windows=tuple(sorted({i.result.window.label for i in items})),
        created=writer.created,
        recomputed=writer.recomputed,
        closed=writer.closed,
        unchanged=writer.unchanged,
        adjustments=tuple(writer.adjustments),
        orphaned=orphaned,
        withdrawn=tuple(writer.withdrawn),
    )
    if writer.closed or writer.adjustments or writer.withdrawn:
        log.info("ledger refreshed %s", result.summary())
    if orphaned:
        log.warning(
            "ledger has open rows of contracts or links no longer configured count=%d", orphaned
        )
    return result


def _orphans(config: Config, rows: Iterable[LedgerRow]) -> int:
    """Open window rows whose contract, or whose link in it, is no longer configured."""
    configured = {(c.id, s.id) for c in config.contracts for s in subjects(c)}
    return sum(
        1
        for r in rows
        if r.kind == "window"
        and r.status == "open"
        and (r.contract_id, r.subject_id) not in configured
    )


# Contracts per transaction when every contract's running windows are refreshed: each
# slice holds the ledger lock, and the event loop, only for its own computation.
REFRESH_SLICE = 500


async def refresh_running(
    db: Database, config: Config, now: datetime, *, slice_contracts: int = REFRESH_SLICE
) -> LedgerRefresh:
    """Bring every contract's running windows up to `now`, and close the rows whose
    grace has passed: what the daemon does once per `notifications.evaluate_every`, so
    that running figures are never more than that behind the data."""
    return await refresh_in_slices(
        db, config, running_labels(config, now), now, slice_contracts=slice_contracts
    )


async def refresh_in_slices(
    db: Database,
    config: Config,
    labels: Sequence[str],
    now: datetime,
    *,
    slice_contracts: int = REFRESH_SLICE,
) -> LedgerRefresh:
    """`refresh_ledger` of `labels` for every contract, a slice of contracts per
    transaction (each slice all or nothing)."""
    ids = [c.id for c in config.contracts]
    total = LedgerRefresh((), 0, 0, 0, 0, (), 0)
    for offset in range(0, len(ids), slice_contracts):
        chunk = ids[offset : offset + slice_contracts]
        total += await refresh_ledger(db, config, labels, now, contract_ids=chunk)
    return total


async def warn_of_orphans(db: Database, config: Config) -> int:
    """Log (and count) the contracts and links with open rows that the config no longer
    has: nothing recomputes those rows, so a person should look."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("ledger_open_subjects"))
        pairs: list[tuple[str, str]] = await cur.fetchall()
    configured = {(c.id, s.id) for c in config.contracts for s in subjects(c)}
    orphaned = [pair for pair in pairs if pair not in configured]
    if orphaned:
        log.warning(
            "ledger has open rows of contracts or links no longer configured count=%d first=%s",
            len(orphaned),
            "/".join(orphaned[0]),
        )
    return len(orphaned)


async def grace_labels(db: Database, now: datetime) -> list[str]:
    """Labels of windows that have ended but have rows still open (late data may come)."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("ledger_grace_labels"), {"now": now})
        return [label for (label,) in await cur.fetchall()]


class _Writer:
    """Writes one refresh's results; counts what it did."""

    def __init__(
        self, cur: psycopg.AsyncCursor[dict[str, Any]], config: Config, now: datetime, actor: str
    ) -> None:
        self.cur, self.config, self.now, self.actor = cur, config, now, actor
        self.created = self.recomputed = self.closed = self.unchanged = 0
        self.adjustments: list[int] = []
        self.withdrawn: list[int] = []
        # Open rows that stay open: every refresh moves them on with the clock, nobody
        # audits that, so they are written together in one pipeline at the end.
        self._quiet: list[dict[str, Any]] = []

    async def flush(self) -> None:
        if self._quiet:
            await self.cur.executemany(query("ledger_recompute"), self._quiet)
            self._quiet.clear()

    async def write(self, item: ContractWindow, mine: Sequence[LedgerRow]) -> None:
        """`mine`: the stored rows (window row and adjustments) of the item's window."""
        window_row = next((r for r in mine if r.kind == "window"), None)
        figures = _figures(self.config, item, self.now)
        status: Status = "closed" if window_status(item, self.now) == "closed" else "open"
        if window_row is None:
            new = await self._insert(figures, kind="window", status=status, amount=None)
            await self._audit(new, "created", None, f"created: {_summary(new)}")
            self.created += 1
        elif window_row.status in SETTLED:
            adjustments = [r for r in mine if r.kind == "adjustment"]
            await self._adjust(window_row, adjustments, figures)
        else:
            # A closed row stays closed: its grace has passed, whatever the terms say now.
            if window_row.status == "closed":
                status = "closed"
            await self._recompute(window_row, figures, status)

    async def _recompute(
        self,
        row: LedgerRow,
        figures: dict[str, Any],
        status: Status,
        *,
        amount: Decimal | None = None,
        reason: str | None = None,
    ) -> LedgerRow | None:
        params = {
            **figures,
            "id": row.id,
            "status": status,
            "amount": figures["credit_amount"] if amount is None else amount,
            "reason": reason,
        }
        if _same(row, params):
            self.unchanged += 1
            return None
        if row.status == "open" and status == "open":
            self._quiet.append(_bind(params))
            self.recomputed += 1
            return None
        await self.cur.execute(query("ledger_recompute"), _bind(params))
        new = _row(_one(await self.cur.fetchone()))
        if status != row.status:
            self.closed += 1
            await self._audit(new, "closed", row.status, f"closed after its grace: {_summary(new)}")
            return new
        self.recomputed += 1
        # Open rows follow the clock on every refresh; only a change to a row billing may
        # already be looking at (a closed one) is worth an audit entry.
        if row.status == "closed":
            detail = f"recomputed: {_changes(row, new)}"
            if row.kind == "adjustment":
                await self._audit(new, "adjusted", row.status, f"{detail}; {reason}")
            else:
                await self._audit(new, "recomputed", row.status, detail)
        return new

    async def _adjust(
        self, settled: LedgerRow, adjustments: Sequence[LedgerRow], figures: dict[str, Any]
    ) -> None:
        """A settled window row never changes: a differing credit becomes an adjustment.

        Manual adjustments (see `adjust`) are billing's decisions on top of the computed
        credit: they are neither recomputed nor counted as credit the computation gave.
        """
        computed = [a for a in adjustments if not is_manual(a)]
        done = [a for a in computed if a.status in SETTLED]
        pending = next((a for a in computed if a.status in UNSETTLED), None)
        credited = settled.credit_amount + sum((a.amount for a in done), Decimal(0))
        latest = max([settled, *done], key=lambda r: r.id)  # the figures billing agreed to
        new_credit: Decimal = figures["credit_amount"]
        delta = quantise(new_credit - credited, figures["currency"])
        if pending is None and delta == 0:
            self.unchanged += 1
            return
        waiting = next((a for a in adjustments if is_manual(a) and a.status in UNSETTLED), None)
        if pending is None and waiting is not None:
            # One unsettled adjustment per row (005_ledger.sql): the computed one follows
            # on the first refresh after billing has settled the manual one.
            log.info(
                "ledger adjustment deferred row=%d waiting_for=%d delta=%s",
                settled.id,
                waiting.id,
                delta,
            )
            self.unchanged += 1
            return
        if pending is not None and delta == 0:
            await self._withdraw(pending, figures, credited)
            return
        reason = _reason(latest, figures)
        if pending is None:
            row = await self._insert(
                figures,
                kind="adjustment",
                status="closed",
                amount=delta,
                parent_id=settled.id,
                reason=reason,
            )
            detail = (
                f"adjustment of #{settled.id} ({settled.status}): {_signed(delta)} "
                f"{row.currency}; {reason}"
            )
            await self._audit(row, "adjusted", None, detail)
            self.adjustments.append(row.id)
            self.created += 1
            return
        new = await self._recompute(pending, figures, "closed", amount=delta, reason=reason)
        if new is not None:
            self.adjustments.append(new.id)

    async def _withdraw(
        self, pending: LedgerRow, figures: dict[str, Any], credited: Decimal
    ) -> None:
        """The pending adjustment's difference is gone: nothing is left to approve."""
        currency = figures["currency"]
        reason = (
            f"withdrawn: the credit is back to {credited:f} {currency}, what was already "
            f"settled (this adjustment was {_signed(pending.amount)} {currency})"
        )
        params = {
            **figures,
            "id": pending.id,
            "status": "withdrawn",
            "amount": quantise(Decimal(0), currency),
            "reason": reason,
        }
        await self.cur.execute(query("ledger_recompute"), _bind(params))
        row = _row(_one(await self.cur.fetchone()))
        await self._audit(row, "withdrawn", pending.status, reason)
        self.withdrawn.append(row.id)

    async def _insert(
        self,
        figures: dict[str, Any],
        *,
        kind: Kind,
        status: Status,
        amount: Decimal | None,
        parent_id: int | None = None,
        reason: str | None = None,
    ) -> LedgerRow:
        params = {
            **figures,
            "kind": kind,
            "parent_id": parent_id,
            "status": status,
            "amount": figures["credit_amount"] if amount is None else amount,
            "reason": reason,
            "created_by": self.actor,
            "created_at": self.now,
        }
        await self.cur.execute(query("ledger_insert"), _bind(params))
        return _row(_one(await self.cur.fetchone()))

    async def _audit(
        self, row: LedgerRow, action: str, from_status: Status | None, detail: str
    ) -> None:
        await _audit(self.cur, row, self.now, self.actor, action, from_status, detail)


def _figures(config: Config, item: ContractWindow, now: datetime) -> dict[str, Any]:
    """The columns of a row for one result, taken from the report record itself so that
    the ledger and the report can never disagree on a figure's value or format."""
    rec = record(item, now)
    window = item.result.window
    figures: dict[str, Any] = {
        "contract_id": item.contract.id,
        "customer_id": item.customer_id,
        "subject_id": item.subject.id,
        "window_label": window.label,
        "window_start": window.start.astimezone(UTC),
        "window_end": window.end.astimezone(UTC),
        "timezone": config.customer(item.customer_id).timezone,
        "measured_until": item.result.measured_until.astimezone(UTC),
        "closes_at": window.end.astimezone(UTC) + item.terms.grace,
        "computed_at": now,
    }
    for name in _NUMBERS:
        value = rec[name]
        figures[name] = None if value is None else Decimal(str(value))
    for name in _PLAIN:
        figures[name] = rec[name]
    figures["review_reason"] = rec["review_reason"]
    figures["extra_figures"] = {
        name: _json_value(value) for name, value in rec.items() if name not in _COLUMN_FIELDS
    }
    return figures


def _json_value(value: object) -> object:
    # Decimals as their exact text: what the CSV shows, without a float in between.
    return str(value) if isinstance(value, Decimal) else value


def _bind(params: dict[str, Any]) -> dict[str, Any]:
    return {**params, "extra_figures": Jsonb(params["extra_figures"])}


def _same(row: LedgerRow, params: Mapping[str, Any]) -> bool:
    """Whether recomputed values equal the stored ones (computed_at aside)."""
    for name, value in params.items():
        if name in ("id", "computed_at"):
            continue
        if getattr(row, name) != value:
            return False
    return True


def _one(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        raise RuntimeError("the ledger statement returned no row")
    return row


def _pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:f} %"


def _signed(amount: Decimal) -> str:
    return f"{amount:+f}"


def _summary(row: LedgerRow) -> str:
    return (
        f"availability {_pct(row.availability_pct)}, credit {row.credit_amount:f} {row.currency}"
        + ("" if row.kind == "window" else f", amount {_signed(row.amount)} {row.currency}")
    )


def _changes(old: LedgerRow, new: LedgerRow) -> str:
    parts = []
    if old.availability_pct != new.availability_pct:
        parts.append(f"availability {_pct(old.availability_pct)} -> {_pct(new.availability_pct)}")
    if old.credit_amount != new.credit_amount:
        parts.append(f"credit {old.credit_amount:f} -> {new.credit_amount:f} {new.currency}")
    if old.amount != new.amount and new.kind == "adjustment":
        parts.append(f"amount {_signed(old.amount)} -> {_signed(new.amount)} {new.currency}")
    return ", ".join(parts) or f"other figures changed ({_summary(new)} unchanged)"


def _reason(basis: LedgerRow, figures: Mapping[str, Any]) -> str:
    new_pct: Decimal | None = figures["availability_pct"]
    credit = f"credit {basis.credit_amount:f} -> {figures['credit_amount']:f} {basis.currency}"
    if new_pct != basis.availability_pct:
        return (
            f"late data changed availability from {_pct(basis.availability_pct)} to "
            f"{_pct(new_pct)}; {credit}"
        )
    return (
        f"recomputation changed the credit with availability unchanged at "
        f"{_pct(new_pct)} (terms or incidents changed); {credit}"
    )


async def _audit(
    cur: psycopg.AsyncCursor[Any],
    row: LedgerRow,
    at: datetime,
    actor: str,
    action: str,
    from_status: Status | None,
    detail: str,
) -> None:
    await cur.execute(
        query("ledger_audit_insert"),
        {
            "ledger_id": row.id,
            "at": at,
            "actor": actor,
            "action": action,
            "from_status": from_status,
            "to_status": row.status,
            "detail": detail,
        },
    )
    log.info(
        "ledger %s row=%d contract=%s link=%s window=%s from=%s to=%s actor=%s",
        action,
        row.id,
        row.contract_id,
        row.subject_id,
        row.window_label,
        from_status,
        row.status,
        actor,
    )


# --- approval and application ------------------------------------------------------------


MAX_NOTE_CHARS = 500


async def approve(
    db: Database, ids: Iterable[int], actor: str, now: datetime, note: str | None = None
) -> list[LedgerRow]:
    """closed -> approved for every row in `ids`, or (on any problem) for none of them.
    A row flagged for review needs `note`: what the approver checked, kept on the row."""
    text = " ".join((note or "").split()) or None
    if text is not None and len(text) > MAX_NOTE_CHARS:
        raise LedgerError(f"keep the note to {MAX_NOTE_CHARS} characters")
    return await _settle(db, ids, actor, now, "approved", None, text)


async def apply(
    db: Database, ids: Iterable[int], actor: str, invoice_ref: str, now: datetime
) -> list[LedgerRow]:
    """approved -> applied with an invoice reference, for every row in `ids` or none."""
    invoice = invoice_ref.strip()
    if not invoice:
        raise LedgerError("give the invoice reference the credits were applied to")
    return await _settle(db, ids, actor, now, "applied", invoice)


async def _settle(
    db: Database,
    ids: Iterable[int],
    actor: str,
    now: datetime,
    to: Literal["approved", "applied"],
    invoice_ref: str | None,
    note: str | None = None,
) -> list[LedgerRow]:
    wanted = sorted(set(ids))
    verb = "approve" if to == "approved" else "apply"
    if not wanted:
        raise LedgerError(f"give the id of at least one ledger row to {verb}")
    if not actor.strip() or actor == SYSTEM:
        raise LedgerError(f"{actor!r} cannot {verb} credits; name the billing user who does")
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query("ledger_lock"), {"key": _LOCK_KEY})
        await cur.execute(query("ledger_rows_by_id"), {"ids": wanted})
        found = {row.id: row for row in map(_row, await cur.fetchall())}
        problems = [_problem(found.get(i), i, to, now, noted=note is not None) for i in wanted]
        if any(problems):
            done = "approved" if to == "approved" else "applied"
            raise LedgerError(f"nothing was {done}:\n" + "\n".join(f"  {p}" for p in problems if p))
        settled = []
        for row_id in wanted:
            before = found[row_id]
            if to == "approved":
                await cur.execute(
                    query("ledger_approve"),
                    {"id": row_id, "actor": actor, "now": now, "note": note},
                )
            else:
                await cur.execute(
                    query("ledger_apply"),
                    {"id": row_id, "actor": actor, "now": now, "invoice_ref": invoice_ref},
                )
            row = _row(_one(await cur.fetchone()))
            detail = f"{to} {_signed_amount(row)} {row.currency}" + (
                f" to invoice {invoice_ref}" if invoice_ref else ""
            )
            if to == "approved" and note is not None:
                detail += f"; note: {note}"
            await _audit(cur, row, now, actor, to, before.status, detail)
            settled.append(row)
    return settled


def _signed_amount(row: LedgerRow) -> str:
    return f"{row.amount:f}" if row.kind == "window" else _signed(row.amount)


def _problem(
    row: LedgerRow | None, row_id: int, to: str, now: datetime, *, noted: bool = True
) -> str | None:
    if row is None:
        return f"there is no ledger row {row_id}"
    what = row.describe()
    if row.status == "withdrawn":
        verb = "approve" if to == "approved" else "apply"
        return f"{what} is withdrawn ({row.reason}); there is nothing to {verb}"
    if to == "approved":
        if row.status == "closed":
            if row.needs_review and not noted:
                return (
                    f"{what} needs review: {row.review_reason}; approve it with a note "
                    "saying what you checked"
                )
            return None
        if row.status == "open":
            if now < row.window_end:
                why = "its window is still running"
            else:
                why = f"late data may still come until {row.local(row.closes_at)}"
            return f"{what} is open ({why}); only closed rows can be approved"
        when = row.local(row.approved_at)
        return (
            f"{what} is already {row.status} (approved by {row.approved_by} at {when}); "
            "a settled row never changes, a correction is an adjustment row"
        )
    if row.status == "approved":
        return None
    if row.status == "applied":
        return (
            f"{what} is already applied (invoice {row.invoice_ref}, by {row.applied_by} at "
            f"{row.local(row.applied_at)})"
        )
    return f"{what} is {row.status}; approve it before applying it"


# --- reading -----------------------------------------------------------------------------


async def list_rows(
    db: Database,
    *,
    window: str | None = None,
    customer: str | None = None,
    status: Status | Sequence[Status] | None = None,
    begun_by: datetime | None = None,
) -> list[LedgerRow]:
    """Rows in window, contract, subject order (an adjustment after what it adjusts);
    with `begun_by`, only rows of windows begun by then."""
    statuses = [status] if isinstance(status, str) else status
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            query("ledger_select"),
            {
                "window": window,
                "customer": customer,
                "statuses": None if statuses is None else list(statuses),
                "begun_by": begun_by,
            },
        )
        return [_row(r) for r in await cur.fetchall()]


async def window_statuses(db: Database, label: str) -> dict[tuple[str, str], Status]:
    """(contract id, subject id) -> status of each window row of `label`."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("ledger_window_statuses"), {"window": label})
        return {(c, s): cast(Status, st) for c, s, st in await cur.fetchall()}


async def audit_log(db: Database, ledger_ids: Sequence[int] | None = None) -> list[AuditEntry]:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            query("ledger_audit_select"),
            {"ids": None if ledger_ids is None else list(ledger_ids)},
        )
        return [AuditEntry(**r) for r in await cur.fetchall()]


def export_fields() -> tuple[str, ...]:
    later = [f for f in (*FIELDS, *LEDGER_FIELDS) if f not in _FIRST_EXPORT]
    return (*_FIRST_EXPORT, *later)


def export_csv(rows: Sequence[LedgerRow]) -> str:
    """The billing system's file: one line per row, the report's fields and formats plus
    the ledger's own (id, kind, parent, amount, reason, invoice and who/when)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=export_fields(), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.record().items()})
    return out.getvalue()


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def to_table(rows: Sequence[LedgerRow]) -> str:
    """The ledger for a person at a terminal."""
    header = ["id", "kind", "contract", "link", "window", "avail %", "credit", "amount", "",
              "status", "by", "invoice", "review"]  # fmt: skip
    lines = [header]
    for r in rows:
        by = r.applied_by or r.approved_by or r.created_by
        lines.append(
            [
                str(r.id),
                r.kind if r.parent_id is None else f"adj. of #{r.parent_id}",
                r.contract_id,
                r.subject_id,
                r.window_label,
                "n/a" if r.availability_pct is None else f"{r.availability_pct:f}",
                f"{r.credit_amount:f}",
                f"{r.amount:f}" if r.kind == "window" else _signed(r.amount),
                r.currency,
                r.status,
                by,
                r.invoice_ref or "",
                "REVIEW" if r.needs_review else "",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


# --- manual adjustments ------------------------------------------------------------------

MAX_REASON_CHARS = 500


def is_manual(row: LedgerRow) -> bool:
    """An adjustment a billing user wrote (`adjust`), not one a recomputation made: the
    automatic actor creates every computed row, and only people approve or adjust."""
    return row.kind == "adjustment" and row.created_by != SYSTEM


async def adjust(
    db: Database, row_id: int, amount: Decimal, reason: str, actor: str, now: datetime
) -> LedgerRow:
    """A manual correction of a settled window row: a new adjustment row crediting
    `amount` more (negative: less) in the row's currency, closed and awaiting its own
    approval, with the figures billing agreed to and the clerk's reason.

    Refused while the row has an adjustment awaiting approval (the ledger keeps one per
    row): folding into it would mix a person's decision with computed figures that the
    next refresh rewrites, or rewrite another clerk's amount under their name. Refused
    too when the row's credit would fall below zero: a credit never becomes a charge.
    """
    text = " ".join(reason.split())
    if not text:
        raise LedgerError("give the reason for the adjustment; it goes on the record")
    if len(text) > MAX_REASON_CHARS:
        raise LedgerError(f"keep the reason to {MAX_REASON_CHARS} characters")
    if not actor.strip() or actor == SYSTEM:
        raise LedgerError(f"{actor!r} cannot adjust credits; name the billing user who does")
    if not amount.is_finite() or amount == 0:
        raise LedgerError("give the amount to credit (or, negative, to take back); not 0")
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query("ledger_lock"), {"key": _LOCK_KEY})
        await cur.execute(query("ledger_rows_by_id"), {"ids": [row_id]})
        found = await cur.fetchone()
        if found is None:
            raise LedgerError(f"there is no ledger row {row_id}")
        parent = _row(found)
        if parent.kind != "window":
            raise LedgerError(
                f"{parent.describe()} is an adjustment; adjust the window row "
                f"#{parent.parent_id} it corrects"
            )
        if parent.status not in SETTLED:
            raise LedgerError(
                f"{parent.describe()} is {parent.status}: its credit still follows the data; "
                "only an approved or applied row takes a manual adjustment"
            )
        if quantise(amount, parent.currency) != amount:
            raise LedgerError(
                f"{amount:f} is not an amount of {parent.currency}: use at most "
                f"{minor_units(parent.currency)} decimal places"
            )
        await cur.execute(query("ledger_adjustments_of"), {"id": parent.id})
        adjustments = [_row(r) for r in await cur.fetchall()]
        waiting = next((a for a in adjustments if a.status in UNSETTLED), None)
        if waiting is not None:
            raise LedgerError(
                f"{parent.describe()} already has an adjustment awaiting approval: "
                f"{waiting.describe()}, {_signed(waiting.amount)} {waiting.currency} "
                f"({waiting.reason}); approve it first, then add yours"
            )
        credited = parent.amount + sum((a.amount for a in adjustments), Decimal(0))
        if credited + amount < 0:
            raise LedgerError(
                f"{parent.describe()} has credited {credited:f} {parent.currency} in all; "
                f"an adjustment can take back at most that much, not {-amount:f}"
            )
        basis = max([parent, *adjustments], key=lambda r: r.id)  # the latest agreed figures
        params = {name: getattr(basis, name) for name in _FIGURE_FIELDS}
        params.update(
            window_start=basis.window_start.astimezone(UTC),
            window_end=basis.window_end.astimezone(UTC),
            kind="adjustment",
            parent_id=parent.id,
            status="closed",
            amount=amount,
            reason=text,
            review_reason=None,  # a person's decision, made with the figures in view
            created_by=actor,
            created_at=now,
        )
        await cur.execute(query("ledger_insert"), _bind(params))
        row = _row(_one(await cur.fetchone()))
        detail = (
            f"manual adjustment of #{parent.id} ({parent.status}): {_signed(amount)} "
            f"{row.currency}; {text}"
        )
        await _audit(cur, row, now, actor, "adjusted", None, detail)
    return row


# The computed figures a manual adjustment copies from the row it corrects.
_FIGURE_FIELDS = (
    "contract_id", "customer_id", "subject_id", "window_label", "timezone",
    "measured_until", "closes_at", *_NUMBERS, *_PLAIN, "extra_figures", "computed_at",
)  # fmt: skip


def why_not(row: LedgerRow, to: Literal["approved", "applied"], now: datetime) -> str | None:
    """Why `row` cannot become `to` now, in the words `approve`/`apply` would refuse it
    with; None when it can (a flagged row given a note). For showing before asking,
    never instead of the lock."""
    return _problem(row, row.id, to, now)


# --- views for people ---------------------------------------------------------------------


Outcome = Literal["met", "missed", "at_risk", "on_track", "no_data"]


@dataclass(frozen=True, slots=True)
class Standing:
    """How one contract and subject stands in one window, as the ledger last computed it."""

    id: int
    contract_id: str
    customer_id: str
    subject_id: str
    window_label: str
    status: Status
    window_end: datetime
    measured_until: datetime
    computed_at: datetime
    availability_pct: Decimal | None
    target_pct: Decimal
    met: bool | None
    budget_s: Decimal
    budget_used_pct: Decimal | None
    budget_warning_pct: int | None  # the highest of the contract's warning levels reached

    @property
    def running(self) -> bool:
        return self.measured_until < self.window_end

    @property
    def outcome(self) -> Outcome:
        """met or missed once the window is over; while it runs, missed as soon as the
        error budget is spent (nothing can bring it back), at risk once a budget warning
        level is reached, else on track."""
        if self.met is None:
            return "no_data"
        if not self.running:
            return "met" if self.met else "missed"
        spent = self.budget_used_pct is None or self.budget_used_pct >= 100
        if not self.met and spent:
            return "missed"
        if self.budget_warning_pct is not None:
            return "at_risk"
        return "on_track"


async def standings(db: Database, labels: Sequence[str], now: datetime) -> list[Standing]:
    """Every window row of `labels` begun by `now`, slim: one read however many
    contracts there are."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query("ledger_standing"), {"labels": list(labels), "now": now})
        return [Standing(**r) for r in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """Which rows a person asks for; None passes everything."""

    windows: tuple[str, ...] | None = None
    customer: str | None = None
    statuses: tuple[Status, ...] | None = None
    kind: Kind | None = None
    ended_after: datetime | None = None  # windows ending after this (recent ones)
    ids: tuple[int, ...] | None = None
    family: int | None = None  # this row and its adjustments
    needs_review: bool | None = None  # True: only rows flagged for review


@dataclass(frozen=True, slots=True)
class Total:
    currency: str
    status: Status
    rows: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class LedgerPage:
    rows: list[LedgerRow]
    totals: list[Total]  # of every matching row, by currency then status (ledger order)

    @property
    def matching(self) -> int:
        return sum(t.rows for t in self.totals)


async def ledger_page(
    db: Database, wanted: LedgerFilter, *, limit: int | None = 100, offset: int = 0
) -> LedgerPage:
    """One page of the matching rows (newest windows first; `limit` None: all of them)
    and the totals of every matching row."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            query("ledger_page"),
            {
                "windows": None if wanted.windows is None else list(wanted.windows),
                "customer": wanted.customer,
                "statuses": None if wanted.statuses is None else list(wanted.statuses),
                "kind": wanted.kind,
                "ended_after": wanted.ended_after,
                "ids": None if wanted.ids is None else list(wanted.ids),
                "family": wanted.family,
                "needs_review": wanted.needs_review,
                "limit": limit,
                "offset": offset,
            },
        )
        found = await cur.fetchall()
    order = {status: i for i, status in enumerate(STATUSES)}
    totals = sorted(
        (
            Total(t["currency"], t["status"], t["rows"], Decimal(t["amount"]))
            for t in (found[0]["totals"] if found else [])
        ),
        key=lambda t: (t.currency, order[t.status]),
    )
    return LedgerPage([_row(r) for r in found if r["id"] is not None], totals)


@dataclass(frozen=True, slots=True)
class AuditLine:
    """An audit entry with what its row is about."""

    entry: AuditEntry
    kind: Kind
    parent_id: int | None
    contract_id: str
    customer_id: str
    subject_id: str
    window_label: str


async def audit_page(
    db: Database,
    *,
    row: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    window: str | None = None,
    customer: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[AuditLine]:
    """The newest `limit` audit entries that pass the filters given; `row` also takes
    the entries of its adjustments."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            query("ledger_audit_page"),
            {
                "row": row,
                "actor": actor,
                "action": action,
                "window": window,
                "customer": customer,
                "since": since,
                "until": until,
                "limit": limit,
            },
        )
        found = await cur.fetchall()
    entry_fields = [f.name for f in fields(AuditEntry)]
    return [
        AuditLine(
            entry=AuditEntry(**{name: r[name] for name in entry_fields}),
            kind=r["kind"],
            parent_id=r["parent_id"],
            contract_id=r["contract_id"],
            customer_id=r["customer_id"],
            subject_id=r["subject_id"],
            window_label=r["window_label"],
        )
        for r in found
    ]


def row_from_db(values: Mapping[str, Any]) -> LedgerRow:
    """A ledger row from a query of another package that selects `ledger.*` (the portal
    reads the rows of one link through the ledger's indexes)."""
    return _row(values)
