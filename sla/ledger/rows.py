"""Ledger rows and audit entries as stored, and what every writer of them shares.

One row per contract, subject and window (or an adjustment of one), in the statuses
open -> closed -> approved -> applied (or withdrawn); `LedgerRow.record()` gives its
figures under the SLA report's field names. The writers (`refresh`, `settle`) lock with
`_LOCK_KEY` and audit every change with `_audit`. Money is `Decimal`, never a float.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from kernel.errors import LinkwatchError
from kernel.formatting import decimal_pct
from sla.queries import query
from sla.records import FIELDS

log = logging.getLogger(__name__)

LedgerStatus = Literal["open", "closed", "approved", "applied", "withdrawn"]
Kind = Literal["window", "adjustment"]
STATUSES: tuple[LedgerStatus, ...] = ("open", "closed", "approved", "applied", "withdrawn")
SETTLED: tuple[LedgerStatus, ...] = ("approved", "applied")
UNSETTLED: tuple[LedgerStatus, ...] = ("open", "closed")  # following the data; withdrawn is final
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
    status: LedgerStatus
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
    from_status: LedgerStatus | None
    to_status: LedgerStatus
    detail: str


def _json_value(value: object) -> object:
    # Decimals as their exact text: what the CSV shows, without a float in between.
    return str(value) if isinstance(value, Decimal) else value


def _bind(params: dict[str, Any]) -> dict[str, Any]:
    return {**params, "extra_figures": Jsonb(params["extra_figures"])}


def _one(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        raise RuntimeError("the ledger statement returned no row")
    return row


def _signed(amount: Decimal) -> str:
    return f"{amount:+f}"


def _summary(row: LedgerRow) -> str:
    availability = decimal_pct(row.availability_pct, space=" ")
    return f"availability {availability}, credit {row.credit_amount:f} {row.currency}" + (
        "" if row.kind == "window" else f", amount {_signed(row.amount)} {row.currency}"
    )


async def _audit(
    cur: psycopg.AsyncCursor[Any],
    row: LedgerRow,
    at: datetime,
    actor: str,
    action: str,
    from_status: LedgerStatus | None,
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


def is_manual(row: LedgerRow) -> bool:
    """An adjustment a billing user wrote (`adjust`), not one a recomputation made: the
    automatic actor creates every computed row, and only people approve or adjust."""
    return row.kind == "adjustment" and row.created_by != SYSTEM


def row_from_db(values: Mapping[str, Any]) -> LedgerRow:
    """A ledger row from a query of another package that selects `ledger.*` (the portal
    reads the rows of one link through the ledger's indexes)."""
    return _row(values)
