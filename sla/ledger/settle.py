"""What billing staff do to rows: approve, apply to an invoice, and adjust by hand.

Each is all or nothing for the rows it is given, in one transaction under the ledger
lock, and audited; a refusal says why in the words `why_not` shows before asking.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from psycopg.rows import dict_row

from collector import Database
from kernel.money import minor_units, quantise
from sla.ledger.rows import (
    _LOCK_KEY,
    _NUMBERS,
    _PLAIN,
    SETTLED,
    SYSTEM,
    UNSETTLED,
    LedgerError,
    LedgerRow,
    _audit,
    _bind,
    _one,
    _row,
    _signed,
)
from sla.queries import query

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


MAX_REASON_CHARS = 500


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
