"""Recompute the open and closed rows from the stored states; adjust what is settled.

`refresh_ledger` computes the contracts' windows and writes what changed in one
transaction under the ledger lock: new rows, recomputed figures, rows closed after their
grace, adjustment rows where a settled row's credit would now differ, and withdrawn
adjustments whose difference came back to zero. It never updates a settled row's figures.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row, tuple_row

from collector import Database
from kernel.config import Config
from kernel.formatting import count_of, decimal_pct
from kernel.money import quantise
from kernel.progress import Progress
from sla.annual_cap import cap_annually, later_in_year
from sla.ledger.ranges import TimeRange, running_labels, window_labels
from sla.ledger.rows import (
    _COLUMN_FIELDS,
    _LOCK_KEY,
    _NUMBERS,
    _PLAIN,
    SETTLED,
    SYSTEM,
    UNSETTLED,
    Kind,
    LedgerRow,
    LedgerStatus,
    _audit,
    _bind,
    _json_value,
    _one,
    _row,
    _signed,
    _summary,
    is_manual,
)
from sla.queries import query
from sla.records import record, window_status
from sla.report import ContractWindow, compute_plan, monitoring_began, plan_windows, subjects
from sla.windows import parse_window

log = logging.getLogger(__name__)


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
    progress: Progress | None = None,
    because: str | None = None,
) -> LedgerRefresh:
    """Recompute the ledger for some windows (labels, or every window of a time range),
    for every contract or only those in `contract_ids`.

    A contract gets a row for a window only once the window has begun in its own zone
    and its links were measured before the window ended (`plan_windows`); a row that
    exists is recomputed whenever its window is. Open and closed rows take the new
    figures (and close once past their grace); a settled row whose credit differs from
    what was settled for it (the row plus its settled adjustments) gets an adjustment
    row, or its pending one is recomputed (or withdrawn, when the difference is gone).
    Runs as one transaction under the ledger lock: all of it or nothing. `progress`
    hears how many windows are computed and rows written. `because` (what a person did
    that calls for the refresh) opens the reason of any adjustment it writes.
    """
    progress = progress or Progress()
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
        # Under an annual credit cap, what is left of the cap for the later windows of
        # the year follows every earlier window's credit: they are recomputed too.
        later = later_in_year(config, contracts, labels, now)
        asked = frozenset(labels)
        labels = sorted(asked | set(later))
        await cur.execute(
            query("ledger_rows_for_labels"),
            {"labels": labels, "contract_ids": None if wanted is None else sorted(wanted)},
        )
        rows = [_row(r) for r in await cur.fetchall()]
        has_row = {(r.contract_id, r.window_label) for r in rows if r.kind == "window"}
        # Computed under the lock (on other pooled connections) so that a computation
        # never lands after a newer one.
        items: list[ContractWindow] = []
        progress.stage("computing windows", len(labels), "windows")
        for done, label in enumerate(labels, 1):
            ids = wanted if label in asked else frozenset(later[label])
            plan = plan_windows(config, label, now, contract_ids=ids, monitored_from=began)
            # The monitoring rule decides which rows are made, never which are kept up
            # to date: a row made before it (or before retention removed the first
            # data) still follows the data.
            kept = [p for p in plan.unmonitored if (p.contract.id, label) in has_row]
            items += await compute_plan(
                db, config, replace(plan, todo=plan.todo + tuple(kept)), now, annual_cap=False
            )
            progress.update(done)
        by_key: dict[tuple[str, str, str], list[LedgerRow]] = {}
        for row in rows:
            by_key.setdefault((row.contract_id, row.subject_id, row.window_label), []).append(row)
        writer = _Writer(cur, config, now, actor, because=because)
        progress.stage("writing ledger rows", len(items), "rows")
        done = 0
        async for group in _capped_in_order(items, writer, conn):
            for item in group:
                key = (item.contract.id, item.subject.id, item.result.window.label)
                await writer.write(item, by_key.get(key, []))
                done += 1
                progress.update(done)
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


async def _capped_in_order(
    items: Sequence[ContractWindow], writer: _Writer, conn: psycopg.AsyncConnection[Any]
) -> AsyncIterator[Sequence[ContractWindow]]:
    """The items to write, in groups: first those without an annual cap, as computed;
    then each capped contract's windows oldest first, each window's subjects together,
    capped on the ledger as this transaction has written it so far (the earlier windows
    of the year included), exactly as `report sla` caps them on the ledger."""
    plain = [i for i in items if i.terms.credit.annual_cap_pct is None]
    if plain:
        yield plain
    capped: dict[tuple[datetime, str, str], list[ContractWindow]] = {}
    for item in items:
        if item.terms.credit.annual_cap_pct is not None:
            window = item.result.window
            key = (window.start.astimezone(UTC), item.contract.id, window.label)
            capped.setdefault(key, []).append(item)
    for key in sorted(capped):
        await writer.flush()  # the rows it holds back are part of what the cap reads
        yield await cap_annually(conn, capped[key])


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
        self,
        cur: psycopg.AsyncCursor[dict[str, Any]],
        config: Config,
        now: datetime,
        actor: str,
        *,
        because: str | None = None,
    ) -> None:
        self.cur, self.config, self.now, self.actor = cur, config, now, actor
        self.because = because
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
        status: LedgerStatus = "closed" if window_status(item, self.now) == "closed" else "open"
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
        status: LedgerStatus,
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
        # already be looking at (a closed one) is worth an audit entry, and a figure the
        # record gained since the row was computed changes nothing billing saw.
        if row.status == "closed" and not _only_added(row, params):
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
        reason = _reason(latest, figures, self.because)
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
        status: LedgerStatus,
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
        self, row: LedgerRow, action: str, from_status: LedgerStatus | None, detail: str
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


def _same(row: LedgerRow, params: Mapping[str, Any]) -> bool:
    """Whether recomputed values equal the stored ones (computed_at aside)."""
    for name, value in params.items():
        if name in ("id", "computed_at"):
            continue
        if getattr(row, name) != value:
            return False
    return True


def _only_added(row: LedgerRow, params: Mapping[str, Any]) -> bool:
    """Whether the recomputed values differ from the stored ones only by record fields
    the row did not have yet (added to the record after it was computed)."""
    for name, value in params.items():
        if name in ("id", "computed_at"):
            continue
        if name == "extra_figures":
            stored = row.extra_figures
            if set(stored) - set(value) or any(value[key] != old for key, old in stored.items()):
                return False
        elif getattr(row, name) != value:
            return False
    return True


def _changes(old: LedgerRow, new: LedgerRow) -> str:
    parts = []
    if old.availability_pct != new.availability_pct:
        before, after = (decimal_pct(r.availability_pct, space=" ") for r in (old, new))
        parts.append(f"availability {before} -> {after}")
    if old.credit_amount != new.credit_amount:
        parts.append(f"credit {old.credit_amount:f} -> {new.credit_amount:f} {new.currency}")
    if old.amount != new.amount and new.kind == "adjustment":
        parts.append(f"amount {_signed(old.amount)} -> {_signed(new.amount)} {new.currency}")
    return ", ".join(parts) or f"other figures changed ({_summary(new)} unchanged)"


def _reason(basis: LedgerRow, figures: Mapping[str, Any], because: str | None = None) -> str:
    new_pct: Decimal | None = figures["availability_pct"]
    credit = f"credit {basis.credit_amount:f} -> {figures['credit_amount']:f} {basis.currency}"
    was_left = basis.extra_figures.get("annual_cap_remaining")
    left = figures["extra_figures"].get("annual_cap_remaining")
    if new_pct == basis.availability_pct and was_left != left and None not in (was_left, left):
        return (
            f"the earlier windows of the year changed what is left of the annual credit cap "
            f"from {was_left} to {left} {basis.currency}; {credit}"
        )
    if new_pct != basis.availability_pct:
        return (
            f"{because or 'late data'} changed availability from "
            f"{decimal_pct(basis.availability_pct, space=' ')} to "
            f"{decimal_pct(new_pct, space=' ')}; {credit}"
        )
    return (
        ("" if because is None else f"{because}: ")
        + "recomputation changed the credit with availability unchanged at "
        f"{decimal_pct(new_pct, space=' ')} (terms or incidents changed); {credit}"
    )
