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

This package must never update a settled row's figures, never delete a row, and never
let two writers interleave: every write runs in one transaction under one advisory lock
(and the database's own trigger refuses what slips past, see 005_ledger.sql and
011_ledger_review.sql). Money is `Decimal` in the currency's minor units, never a float.

By job: `rows` (the rows as stored, and what their writers share), `ranges` (which
windows to compute), `refresh` (recomputation), `settle` (approve, apply, adjust),
`reads` and `export`. How people see the figures is the portal's (`portal.ledger_views`).
What callers use is exported here.
"""

from sla.ledger.export import export_csv, export_fields, to_table
from sla.ledger.ranges import TimeRange, history_range, recent_range, samples_range, window_labels
from sla.ledger.reads import (
    AuditLine,
    LedgerFilter,
    Total,
    audit_log,
    audit_page,
    list_rows,
    window_statuses,
)
from sla.ledger.refresh import (
    LedgerRefresh,
    grace_labels,
    refresh_in_slices,
    refresh_ledger,
    refresh_running,
    warn_of_orphans,
)
from sla.ledger.rows import (
    LEDGER_FIELDS,
    SETTLED,
    STATUSES,
    UNSETTLED,
    AuditEntry,
    Kind,
    LedgerError,
    LedgerRow,
    LedgerStatus,
    is_manual,
    row_from_db,
)
from sla.ledger.settle import MAX_NOTE_CHARS, adjust, apply, approve, why_not

__all__ = [
    "LEDGER_FIELDS",
    "MAX_NOTE_CHARS",
    "SETTLED",
    "STATUSES",
    "UNSETTLED",
    "AuditEntry",
    "AuditLine",
    "Kind",
    "LedgerError",
    "LedgerFilter",
    "LedgerRefresh",
    "LedgerRow",
    "LedgerStatus",
    "TimeRange",
    "Total",
    "adjust",
    "apply",
    "approve",
    "audit_log",
    "audit_page",
    "export_csv",
    "export_fields",
    "grace_labels",
    "history_range",
    "is_manual",
    "list_rows",
    "recent_range",
    "refresh_in_slices",
    "refresh_ledger",
    "refresh_running",
    "row_from_db",
    "samples_range",
    "to_table",
    "warn_of_orphans",
    "why_not",
    "window_labels",
    "window_statuses",
]
