"""A customer's home page as an overview: per link its running week and month against
the contract's target (met, at risk or missed, and the error budget left), a compact
90-day bar, and the credits still owed; above the list, how many links are up and how
many contracts are on target this month.

Pure: the caller (`portal.pages.overview`) reads everything in a few batched reads and
passes only the viewer's own links, windows and ledger rows. The figures are the link
page's own views (`portal.link_views.window_view`, `portal.link_charts.day_figures` and
`day_cell`), so the two pages can never disagree; nothing here reads, writes or renders
a template.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from html import escape

from markupsafe import Markup

from kernel.config import Contract
from kernel.domain import LinkStatus
from portal.board import LinkRow
from portal.formatting import money
from portal.link_charts import DayFigures, day_bar, day_cell
from portal.link_views import window_view
from sla.ledger import LedgerRow, LedgerStatus
from sla.report import ContractWindow
from sla.windows import WindowKind

# What a customer is still owed: credits not yet on an invoice (withdrawn rows are none).
OWED: tuple[LedgerStatus, ...] = ("open", "closed", "approved")


@dataclass(frozen=True, slots=True)
class Standing:
    """One contract window of a link at a glance."""

    contract_id: str
    label: str  # 2026-W47
    availability: str
    target: str
    verdict: str  # Met, At risk, Missed, No data
    tone: str  # up, degraded, down, unknown
    budget_left: str
    contractual: bool  # False: for information, the contract is measured otherwise


@dataclass(frozen=True, slots=True)
class LinkOverview:
    row: LinkRow
    week: Standing | None
    month: Standing | None
    more_contracts: int  # further contracts of the link, on its own page
    bar: Markup  # the 90-day strip
    bar_availability: str  # over the 90 days
    owed: str | None  # credits still owed for this link; None: nothing owed


@dataclass(frozen=True, slots=True)
class Summary:
    links: int
    counts: tuple[tuple[LinkStatus, int], ...]  # worst first, statuses present only
    on_target: int  # this month's contract windows met so far
    missed: int
    at_risk: int
    measured: int  # this month's contract windows with figures
    owed: str  # per currency, or "none"


def verdict(item: ContractWindow) -> tuple[str, str]:
    """A running window in one word: missed once its downtime is past the whole window's
    budget (no later uptime can bring it back), at risk while below the target or using
    the budget faster than the window allows, else met."""
    result = item.result
    if result.met is None:
        return "No data", "unknown"
    used = result.budget_used
    if (used is not None and used >= 1) or (used is None and not result.met):
        return "Missed", "down"
    if not result.met or result.warnings or (result.burn_rate is not None and result.burn_rate > 1):
        return "At risk", "degraded"
    return "Met", "up"


def standing(item: ContractWindow, kind: WindowKind, now: datetime, tz: tzinfo) -> Standing:
    # The link page's own view of the window: the same text for the same figures.
    view = window_view(item, kind, down_now=False, staff=False, now=now, tz=tz)
    word, tone = verdict(item)
    return Standing(
        contract_id=item.contract.id,
        label=view.label,
        availability=view.availability,
        target=view.target,
        verdict=word,
        tone=tone,
        budget_left=view.budget_left,
        contractual=view.contractual,
    )


def money_by_currency(amounts: Iterable[tuple[str, Decimal]]) -> str:
    totals: dict[str, Decimal] = {}
    for currency, amount in amounts:
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    shown = [money(amount, cur) for cur, amount in sorted(totals.items()) if amount]
    return ", ".join(shown) or "none"


def owed_rows(rows: Iterable[LedgerRow]) -> list[LedgerRow]:
    return [r for r in rows if r.status in OWED]


def day_strip(figures: Sequence[DayFigures], link_id: str) -> Markup:
    """The 90-day bar in one small SVG for a list of many links: each day a cell coloured
    as on the link page, with that page's words for it as the cell's tooltip; its own
    page has the bar with the figures strip below it."""
    cells = [day_cell(f) for f in figures]
    count = max(len(cells), 1)
    parts = [
        f'<svg class="strip" viewBox="0 0 {count * 4} 16" preserveAspectRatio="none" '
        f'role="img" aria-label="Daily availability of {escape(link_id)}, last {count} days">'
    ]
    for index, cell in enumerate(cells):
        parts.append(
            f'<g class="day day-{escape(cell.tone)}"><title>{escape(cell.label)}</title>'
            f'<rect x="{index * 4}" y="0" width="3" height="16"/></g>'
        )
    parts.append("</svg>")
    # Every text above went through escape(), every number is an int.
    return Markup("".join(parts))  # noqa: S704


def link_overview(
    row: LinkRow,
    contracts: Sequence[Contract],
    weekly: Sequence[ContractWindow],
    monthly: Sequence[ContractWindow],
    days: Sequence[DayFigures],
    owed: Sequence[LedgerRow],
    now: datetime,
    tz: tzinfo,
) -> LinkOverview:
    """One link's line. With several contracts the first (config order) is shown, the
    others are counted and shown on the link's page."""
    mine = [c for c in contracts if row.id in c.links]
    first = mine[0].id if mine else None

    def pick(found: Sequence[ContractWindow], kind: WindowKind) -> Standing | None:
        for item in found:
            if item.contract.id == first and row.id in item.subject.link_ids:
                return standing(item, kind, now, tz)
        return None

    bar = day_bar(days) if days else None
    own = [(r.currency, r.amount) for r in owed if r.subject_id == row.id]
    return LinkOverview(
        row=row,
        week=pick(weekly, "week"),
        month=pick(monthly, "month"),
        more_contracts=max(len(mine) - 1, 0),
        bar=day_strip(days, row.id),
        bar_availability=bar.availability if bar is not None else "n/a",
        owed=money_by_currency(own) if own and any(a for _, a in own) else None,
    )


def summary(
    rows: Sequence[LinkRow],
    counts: Sequence[tuple[LinkStatus, int]],
    monthly: Sequence[ContractWindow],
    owed: Sequence[LedgerRow],
) -> Summary:
    """Above the list: every link of the customer (not only the page shown), this
    month's contract windows (one per contract and subject) and every credit owed."""
    verdicts = [verdict(item)[0] for item in monthly]
    met = verdicts.count("Met")
    at_risk = verdicts.count("At risk")
    missed = verdicts.count("Missed")
    return Summary(
        links=len(rows),
        counts=tuple(counts),
        on_target=met,
        missed=missed,
        at_risk=at_risk,
        measured=met + at_risk + missed,
        owed=money_by_currency((r.currency, r.amount) for r in owed),
    )
