"""The annual credit cap: what one contract credits for a calendar year, at most.

`credit: {annual_cap_pct: 10}` caps the credits of one contract (all its subjects) for
the windows starting in one calendar year of its zone at that percent of the year's
fees: the fee per window (of the terms in force at the window's start) times the
contract's windows that start in that year. A window pays its credit reduced to what
the earlier windows of that year left of the cap, and its subjects take what is left
in the contract's order of subjects: the window where the cap is reached pays the
remainder, the later ones nothing.

"What the earlier windows took" is what the ledger credits for them: each window row's
amount plus its adjustments (settled, pending or manual; a withdrawn one is zero). A
window without a ledger row took nothing. The SLA report and the ledger apply the rule
through `cap_annually` on the same ledger figures, so that the amount a report shows
for a window is the amount its ledger row pays.

The rule itself (`cap_credits`, `year_cap`, `windows_in_year`) is pure; `cap_annually`
reads the ledger (on the caller's cursor, so the ledger sees its own writes) and never
writes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import tuple_row

from kernel.config import Config, Contract, ResolvedTerms
from kernel.money import minor_units, quantise
from sla.queries import query
from sla.windows import Window, WindowKind, parse_window, window_containing

if TYPE_CHECKING:
    from sla.report import ContractWindow


@dataclass(frozen=True, slots=True)
class AnnualCap:
    """How the annual cap bore on one subject's window credit."""

    year: int  # the calendar year, in the contract's zone, that the window starts in
    cap: Decimal  # the year's cap in money
    remaining: Decimal  # what earlier windows (and subjects) of the year left of it
    before: Decimal  # the window's credit by its own rules
    amount: Decimal  # what is paid: `before`, at most `remaining`

    @property
    def reduced(self) -> bool:
        return self.amount < self.before


def windows_in_year(kind: WindowKind, tz: ZoneInfo, year: int) -> int:
    """How many windows of `kind` start in calendar `year` of zone `tz`: 12 months, 4
    quarters, 1 year, and the 52 or 53 ISO weeks whose Monday is in it."""
    if kind != "week":
        return {"month": 12, "quarter": 4, "year": 1}[kind]
    first = parse_window(str(year), tz)
    window = window_containing("week", tz, first.start)
    count = 0
    while window.start < first.end:
        count += window.start >= first.start
        window = window.next()
    return count


def year_cap(fee: Decimal, windows: int, cap_pct: Decimal, currency: str) -> Decimal:
    """`cap_pct` of the year's fees, cut (never rounded up) to the currency's minor unit:
    the cap is a limit, so it may not exceed what the contract says by half a cent."""
    exact = fee * windows * cap_pct / 100
    return exact.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_DOWN)


def cap_credits(
    year: int, credits: Sequence[Decimal], cap: Decimal, used: Decimal, currency: str
) -> tuple[AnnualCap, ...]:
    """Each of one window's subject credits (in the contract's order) reduced to what is
    left of `cap` after `used` (the earlier windows of the year) and the subjects before
    it. More than the cap used already (a manual adjustment can do that) leaves 0."""
    out = []
    for before in credits:
        remaining = quantise(max(cap - used, Decimal(0)), currency)
        amount = min(before, remaining)
        out.append(AnnualCap(year, cap, remaining, before, amount))
        used += amount
    return tuple(out)


def annual_cap_pct(terms: ResolvedTerms) -> Decimal | None:
    return terms.credit.annual_cap_pct


async def credited_before(
    cur: psycopg.AsyncCursor[tuple[Any, ...]],
    customer_id: str,
    contract_id: str,
    since: datetime,
    until: datetime,
) -> Decimal:
    """What the ledger credits the contract for its windows starting in [since, until)."""
    await cur.execute(
        query("annual_cap_credited"),
        {"customer_id": customer_id, "contract_id": contract_id, "since": since, "until": until},
    )
    row = await cur.fetchone()
    return Decimal(0) if row is None or row[0] is None else Decimal(row[0])


async def cap_annually(
    conn: psycopg.AsyncConnection[Any], items: Sequence[ContractWindow]
) -> list[ContractWindow]:
    """`items` with the annual cap applied to those whose contract has one: their credit
    amount reduced, and `annual_cap` saying how. A contract's subjects of one window must
    come together, in the contract's order; the others are returned as they are."""
    out = list(items)
    groups: dict[tuple[str, str], list[int]] = {}
    for index, item in enumerate(items):
        if annual_cap_pct(item.terms) is not None:
            key = (item.contract.id, item.result.window.label)
            groups.setdefault(key, []).append(index)
    if not groups:
        return out
    cur = conn.cursor(row_factory=tuple_row)
    for indexes in groups.values():
        first = items[indexes[0]]
        window = first.result.window
        year = parse_window(str(window.start.year), _zone(window))
        used = await credited_before(
            cur,
            first.customer_id,
            first.contract.id,
            year.start.astimezone(UTC),
            window.start.astimezone(UTC),
        )
        terms = first.terms
        pct = annual_cap_pct(terms)
        assert pct is not None
        windows = windows_in_year(window.kind, _zone(window), year.start.year)
        cap = year_cap(terms.fee, windows, pct, terms.currency)
        credits = [items[i].result.credit.amount for i in indexes]
        for index, capped in zip(
            indexes, cap_credits(year.start.year, credits, cap, used, terms.currency), strict=True
        ):
            item = items[index]
            credit = replace(item.result.credit, amount=capped.amount)
            out[index] = replace(
                item, result=replace(item.result, credit=credit), annual_cap=capped
            )
    return out


def later_in_year(
    config: Config, contracts: Iterable[Contract], labels: Collection[str], now: datetime
) -> dict[str, set[str]]:
    """label -> ids of the contracts with an annual cap whose later windows of the same
    year, begun by `now`, depend on a window of `labels`: what is left of the cap for
    them changes when an earlier window's credit does."""
    later: dict[str, set[str]] = {}
    for contract in contracts:
        if not may_cap(config, contract):
            continue
        tz = config.customer(contract.customer).tz
        for label in labels:
            window = parse_window(label, tz)
            terms = contract.terms_at(window.start.astimezone(UTC), config.plans)
            if terms is None or terms.window != window.kind or annual_cap_pct(terms) is None:
                continue
            following = window.next()
            while following.start.year == window.start.year and following.has_begun(now):
                later.setdefault(following.label, set()).add(contract.id)
                following = following.next()
    return later


def may_cap(config: Config, contract: Contract) -> bool:
    """Whether any layer of the contract's terms sets an annual cap: the others need no
    look at their terms."""
    layers = [p for p in config.plans if p.id == contract.plan]
    return any(
        t.credit is not None and t.credit.annual_cap_pct is not None
        for t in (*layers, contract, *contract.versions)
    )


def _zone(window: Window) -> ZoneInfo:
    assert isinstance(window.start.tzinfo, ZoneInfo)
    return window.start.tzinfo
