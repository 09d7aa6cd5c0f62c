"""Ledger rows as the customer they are owed to reads them: the window, the figures,
the credit and what its status means for them.

Shared by the link page and the credits page. Pure: the rows come from the caller, who
asks only for the viewer's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from portal.formatting import (
    DEFAULT_AVAILABILITY_DECIMALS,
    availability_text,
    local_span,
    local_time,
    money,
    share_text,
    target_text,
)
from sla.ledger import LedgerRow


@dataclass(frozen=True, slots=True)
class CreditView:
    id: int
    kind: str
    contract_id: str
    subject: str
    window_label: str
    window_span: str
    availability: str
    target: str
    met: bool | None
    credit_pct: str
    amount: str
    status: str
    status_words: str
    note: str | None
    # The colour of the status words, by what they mean to the customer: a final window
    # with nothing due is settled (calm), not something waiting (amber).
    tone: str = ""


def status_words(row: LedgerRow, now: datetime, tz: tzinfo) -> str:
    """The ledger status in plain words, for the customer who is owed the credit."""
    if row.status == "open":
        if now < row.window_end:
            return "Being measured: the figures change until the window ends"
        return f"Provisional: late data may still arrive until {local_time(row.closes_at, tz)}"
    if row.status == "withdrawn":
        return "Withdrawn: later data left the credit as it was"
    if row.status == "closed":
        if row.needs_review:
            return (
                f"Under review: this window was measured for {share_text(row.coverage_pct)}"
                " of its time, so billing checks it before the credit is final"
            )
        if row.kind == "window" and row.amount == 0:
            return "Final: no credit due"
        return "Final: awaiting approval"
    if row.status == "approved":
        return "Approved: to be credited on your next invoice"
    return f"Credited on invoice {row.invoice_ref}" if row.invoice_ref else "Credited"


def status_tone(row: LedgerRow) -> str:
    """The CSS tone of a row's status words: its status, but "settled" for a final
    window that owes nothing (nothing is left to happen to it)."""
    nothing_due = row.kind == "window" and row.amount == 0 and not row.needs_review
    return "settled" if row.status == "closed" and nothing_due else row.status


def credit_view(
    row: LedgerRow, now: datetime, tz: tzinfo, decimals: int = DEFAULT_AVAILABILITY_DECIMALS
) -> CreditView:
    """`decimals`: of the availability, as the row's contract says (its
    `availability_decimals`)."""
    note = None
    if row.kind == "adjustment":
        note = f"Correction of #{row.parent_id}: {row.reason}" if row.reason else None
    amount = row.amount if row.kind == "adjustment" else row.credit_amount
    return CreditView(
        id=row.id,
        kind=row.kind,
        contract_id=row.contract_id,
        subject=row.subject_id,
        window_label=row.window_label,
        window_span=local_span(row.window_start, row.window_end, tz),
        availability=availability_text(row.availability_pct, decimals),
        target=target_text(row.target_pct),
        met=row.met,
        credit_pct=share_text(row.credit_pct),
        amount=money(amount, row.currency, signed=row.kind == "adjustment"),
        status=row.status,
        status_words=status_words(row, now, tz),
        tone=status_tone(row),
        note=note,
    )
