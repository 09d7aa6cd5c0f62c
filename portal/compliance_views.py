"""The compliance rate as people see it: tables of "met / windows (share %)" per period
with the trend, for /noc/compliance, the billing desk and the customer's home page, and
the same figures for the API.

Reads go through `PortalReads` (one grouped ledger query per scope, cached like the
ledger's other figures); the rates are `sla.compliance`'s. A customer's view is computed
from their own rows only and shows only their own scope: this module must never hand
a customer the overall or a plan's figures, which hold other customers' windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from aiohttp import web

from kernel.formatting import decimal_text
from portal.formatting import NBSP
from portal.keys import CLOCK, LIVE, READS
from sla.compliance import (
    LOOKBACK,
    PERIODS,
    Compliance,
    ContractInfo,
    Rate,
    Scope,
    Tally,
    compliance,
    unit,
)

ARROWS = {"up": "↑", "down": "↓", "flat": "→"}
NO_WINDOWS = "no windows yet"


ANY_PLAN = "*"


async def compliance_of(
    request: web.Request, customer: str | None, plan: str | None = ANY_PLAN
) -> Compliance:
    """The rates of `customer`'s contracts (None: every customer's, for staff), as of the
    app's clock; with `plan`, only that plan's contracts (None: those without a plan).
    The caller has checked that the viewer may see `customer`."""
    app = request.app
    now: datetime = app[CLOCK]()
    config = app[LIVE].config
    # A stable key for a day: the read covers more than the periods need.
    since = datetime.combine((now - LOOKBACK).astimezone(UTC).date(), time(0), tzinfo=UTC)
    counts = await app[READS].compliance_counts(customer, since)
    contracts = {}
    by_id = {contract.id for contract in config.contracts}
    for contract in config.contracts:
        if customer is not None and contract.customer != customer:
            continue
        terms = contract.terms_at(now, config.plans)
        kind = None if terms is None else terms.window
        contracts[contract.id] = ContractInfo(contract.customer, contract.plan, kind)
    if plan != ANY_PLAN:
        contracts = {k: info for k, info in contracts.items() if info.plan == plan}
        # A contract no longer configured counts as without a plan.
        counts = [
            c
            for c in counts
            if (c.contract_id in contracts) or (plan is None and c.contract_id not in by_id)
        ]
    return compliance(counts, now, contracts)


def tally_text(tally: Tally) -> str:
    """ "50 / 52 (96.15 %)", truncated, never rounded up; "no windows yet"."""
    share = tally.share_pct()
    if share is None:
        return NO_WINDOWS
    return f"{tally.met} / {tally.windows} ({decimal_text(share)}{NBSP}%)"


def change_text(rate: Rate) -> str | None:
    """ "↑ +2.5 pts" against the period before; None when either has no window."""
    change = rate.change_pts()
    if change is None or rate.trend is None:
        return None
    sign = "+" if change > 0 else "−" if change < 0 else "±"
    return f"{ARROWS[rate.trend]} {sign}{decimal_text(abs(change))}{NBSP}pts"


@dataclass(frozen=True, slots=True)
class Cell:
    text: str  # "3 / 4 (75 %)", "no windows yet", or "" where the scope has no such window
    trend: str | None  # up, down, flat
    change: str | None  # "↑ +25 pts"
    previous: str | None  # the previous period, "2 / 4 (50 %)"


@dataclass(frozen=True, slots=True)
class Line:
    id: str | None
    name: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True, slots=True)
class Table:
    heading: str
    columns: tuple[str, ...]  # "Last 4 weeks"
    lines: tuple[Line, ...]


def columns(result: Compliance) -> list[tuple[str, int]]:
    return [(kind, n) for kind in result.kinds for n in PERIODS[kind]]


def _cell(scope: Scope, kind: str, n: int) -> Cell:
    rate = scope.rate(kind, n)
    if rate is None:
        return Cell("", None, None, None)
    return Cell(
        tally_text(rate.current),
        rate.trend,
        change_text(rate),
        None if rate.previous.windows == 0 else tally_text(rate.previous),
    )


def table(
    heading: str, result: Compliance, scopes: tuple[Scope, ...], names: dict[str, str]
) -> Table:
    wanted = columns(result)
    return Table(
        heading,
        tuple(f"Last {n} {unit(kind, n)}" for kind, n in wanted),
        tuple(
            Line(
                scope.id,
                names.get(scope.id or "", scope.name),
                tuple(_cell(scope, kind, n) for kind, n in wanted),
            )
            for scope in scopes
        ),
    )


def staff_tables(result: Compliance, names: dict[str, str]) -> list[Table]:
    """Overall, per plan and per customer: what operations and billing see."""
    return [
        table("Overall", result, (result.overall,), {}),
        table("Per plan", result, result.plans, {}),
        table("Per customer", result, result.customers, names),
    ]


def rate_body(rate: Rate) -> dict[str, object]:
    """One rate as the API answers it: counts, exact truncated shares, the trend."""
    share, before = rate.current.share_pct(), rate.previous.share_pct()
    change = rate.change_pts()
    return {
        "window": rate.kind,
        "count": rate.count,
        "label": rate.label,
        "met": rate.current.met,
        "windows": rate.current.windows,
        "share_pct": None if share is None else f"{share:f}",
        "previous_met": rate.previous.met,
        "previous_windows": rate.previous.windows,
        "previous_share_pct": None if before is None else f"{before:f}",
        "change_pts": None if change is None else f"{change:f}",
        "trend": rate.trend,
    }


def scope_body(scope: Scope, name: str | None = None) -> dict[str, object]:
    return {
        "scope": scope.kind,
        "id": scope.id,
        "name": name if name is not None else scope.name,
        "rates": [rate_body(rate) for rate in scope.rates],
    }
