"""Reading the ledger: rows, window statuses, the audit log, and the reads pages are made of.

Only reads, returning the rows and figures as stored: how a person sees them (a window's
outcome, the totals in ledger order) is `portal.ledger_views`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from psycopg.rows import dict_row, tuple_row

from collector import Database
from sla.ledger.rows import AuditEntry, Kind, LedgerRow, LedgerStatus, _row
from sla.queries import query


async def list_rows(
    db: Database,
    *,
    window: str | None = None,
    customer: str | None = None,
    status: LedgerStatus | Sequence[LedgerStatus] | None = None,
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


async def window_statuses(db: Database, label: str) -> dict[tuple[str, str], LedgerStatus]:
    """(contract id, subject id) -> status of each window row of `label`."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("ledger_window_statuses"), {"window": label})
        return {(c, s): cast(LedgerStatus, st) for c, s, st in await cur.fetchall()}


async def audit_log(db: Database, ledger_ids: Sequence[int] | None = None) -> list[AuditEntry]:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            query("ledger_audit_select"),
            {"ids": None if ledger_ids is None else list(ledger_ids)},
        )
        return [AuditEntry(**r) for r in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """Which rows a person asks for; None passes everything."""

    windows: tuple[str, ...] | None = None
    customer: str | None = None
    statuses: tuple[LedgerStatus, ...] | None = None
    kind: Kind | None = None
    ended_after: datetime | None = None  # windows ending after this (recent ones)
    ids: tuple[int, ...] | None = None
    family: int | None = None  # this row and its adjustments
    needs_review: bool | None = None  # True: only rows flagged for review


@dataclass(frozen=True, slots=True)
class Total:
    currency: str
    status: LedgerStatus
    rows: int
    amount: Decimal


async def matching_rows(
    db: Database, wanted: LedgerFilter, *, limit: int | None = 100, offset: int = 0
) -> tuple[list[LedgerRow], list[Total]]:
    """One page of the matching rows (newest windows first; `limit` None: all of them)
    and the totals of every matching row, per currency and status, in no set order."""
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
    totals = [
        Total(t["currency"], t["status"], t["rows"], Decimal(t["amount"]))
        for t in (found[0]["totals"] if found else [])
    ]
    return [_row(r) for r in found if r["id"] is not None], totals


async def standing_rows(db: Database, labels: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    """Every window row of `labels` begun by `now`, slim (the fields of
    `portal.ledger_views.Standing`): one read however many contracts there are."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query("ledger_standing"), {"labels": list(labels), "now": now})
        return await cur.fetchall()


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
