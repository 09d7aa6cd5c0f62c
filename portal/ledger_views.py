"""The credit ledger as people see it: how a contract stands in its window, and a page
of rows with its totals.

The figures are the ledger's (`sla.ledger`, which reads and writes them); what is here
decides only how they read: a window's outcome (met, missed, at risk, on track) and the
order of a page's totals. Nothing here writes to the ledger or runs SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from collector import Database
from kernel.config import Config
from kernel.formatting import availability_text, share_text, target_text
from sla.ledger import STATUSES, LedgerFilter, LedgerRow, LedgerStatus, Total
from sla.ledger.reads import matching_rows, standing_rows

Verdict = Literal["met", "missed", "at_risk", "on_track", "no_data"]


@dataclass(frozen=True, slots=True)
class Standing:
    """How one contract and subject stands in one window, as the ledger last computed it."""

    id: int
    contract_id: str
    customer_id: str
    subject_id: str
    window_label: str
    status: LedgerStatus
    window_start: datetime  # its contract's terms then say how its figures read
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
    def outcome(self) -> Verdict:
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


class StandingText:
    """The figures of standings as people read them, by the shared rules: availability to
    the decimals of its contract's terms in force when the window began, the target as
    the contract wrote it, budget used as a share (two decimals, truncated)."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def availability(self, standing: Standing) -> str:
        decimals = self._config.availability_decimals(standing.contract_id, standing.window_start)
        return availability_text(standing.availability_pct, decimals)

    @staticmethod
    def target(standing: Standing) -> str:
        return target_text(standing.target_pct)

    @staticmethod
    def budget_used(standing: Standing) -> str:
        return share_text(standing.budget_used_pct)


async def standings(db: Database, labels: Sequence[str], now: datetime) -> list[Standing]:
    """How each window row of `labels` begun by `now` stands: one read however many
    contracts there are."""
    return [Standing(**r) for r in await standing_rows(db, labels, now)]


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
    and the totals of every matching row, by currency then status in ledger order."""
    rows, totals = await matching_rows(db, wanted, limit=limit, offset=offset)
    order = {status: i for i, status in enumerate(STATUSES)}
    return LedgerPage(rows, sorted(totals, key=lambda t: (t.currency, order[t.status])))
