"""The ledger for billing and for a person at a terminal: CSV export and a text table.

The CSV has the SLA report's fields and formats plus the ledger's own.
"""

from __future__ import annotations

from collections.abc import Sequence

from kernel.formatting import csv_text, text_table
from sla.ledger.rows import LEDGER_FIELDS, LedgerRow, _signed
from sla.records import FIELDS

# The export's columns as first released: the record's fields of the time, then the
# ledger's own. Whatever either gains later comes after them, so positional readers of
# the file keep working.
_FIRST_EXPORT = (
    *FIELDS[: FIELDS.index("objectives_met") + 1],
    *LEDGER_FIELDS[: LEDGER_FIELDS.index("applied_at") + 1],
)


# The columns added after the first release, in the order files have carried them: the
# record's review fields, then the ledger's own. A record field added later still comes
# after all of these, never between them.
_RELEASED = (
    *_FIRST_EXPORT,
    *(f for f in FIELDS[: FIELDS.index("withheld_credit_amount") + 1] if f not in _FIRST_EXPORT),
    *(f for f in LEDGER_FIELDS[: LEDGER_FIELDS.index("timezone") + 1] if f not in _FIRST_EXPORT),
)


def export_fields() -> tuple[str, ...]:
    later = [f for f in (*FIELDS, *LEDGER_FIELDS) if f not in _RELEASED]
    return (*_RELEASED, *later)


def export_csv(rows: Sequence[LedgerRow]) -> str:
    """The billing system's file: one line per row, the report's fields and formats plus
    the ledger's own (id, kind, parent, amount, reason, invoice and who/when)."""
    return csv_text(export_fields(), (row.record() for row in rows))


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
    return text_table(lines)
