"""Compliance rate: the share of contract windows met, per customer, per plan and
overall, over the last weeks and months, with the trend against the period before.

A period is the last N windows of one kind (4, 12 or 52 weeks; 3 or 12 months) that
have ended, in each row's own time zone: "the last 4 weeks" of a Tokyo contract end at
Tokyo's Monday midnight, and a DST week still counts as one week. The previous period
is the N windows before those. A window is counted from the ledger's window row (its
`met`): one still running is not counted, nor one with no availability ("n/a", met is
None), since nothing was promised about time nobody could measure.

Keyed by window kind (`PERIODS`); a label that names no kind of window is left out.

Pure: no clock, no database, no formatting for people beyond exact truncated figures.
Shares are `Fraction`s; percentages are truncated toward zero, never rounded up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Literal
from zoneinfo import ZoneInfo

from sla.compute import truncate
from sla.windows import WindowKind, label_kind, window_containing

# window kind -> the periods shown, in windows of that kind, shortest first.
PERIODS: dict[str, tuple[int, ...]] = {
    "week": (4, 12, 52),
    "month": (3, 12),
    "quarter": (4,),
    "year": (1,),
}
KIND_ORDER = tuple(PERIODS)
# Enough history for the longest period and the one before it, whatever the kind: two
# years (of weeks, months, quarters or years), and a margin for time zones.
LOOKBACK = timedelta(days=2 * 366 + 7)

NO_PLAN = "no plan"
ScopeKind = Literal["overall", "plan", "customer"]
Trend = Literal["up", "down", "flat"]


def unit(kind: str, count: int) -> str:
    """ "week" / "weeks": how a person counts windows of `kind`."""
    return kind if count == 1 else f"{kind}s"


@dataclass(frozen=True, slots=True)
class WindowCount:
    """What the ledger holds of one contract's window: how many of its window rows (one
    per subject) were met and how many had an availability at all."""

    contract_id: str
    customer_id: str
    window_label: str
    timezone: str
    window_end: datetime
    met: int
    counted: int  # rows with met true or false (n/a rows are not counted)


@dataclass(frozen=True, slots=True)
class ContractInfo:
    """A configured contract's place in the scopes: its customer, plan and window kind."""

    customer_id: str
    plan: str | None
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class Tally:
    met: int = 0
    windows: int = 0

    def add(self, met: int, windows: int) -> Tally:
        return Tally(self.met + met, self.windows + windows)

    @property
    def share(self) -> Fraction | None:
        """met / windows; None when there is no window ("no windows yet")."""
        return None if self.windows == 0 else Fraction(self.met, self.windows)

    def share_pct(self, places: int = 2) -> Decimal | None:
        share = self.share
        return None if share is None else truncate(share * 100, places)


@dataclass(frozen=True, slots=True)
class Rate:
    """The share of windows met over the last `count` windows of `kind`, and over the
    `count` windows before them."""

    kind: str
    count: int
    current: Tally
    previous: Tally

    @property
    def label(self) -> str:
        return f"last {self.count} {unit(self.kind, self.count)}"

    @property
    def change(self) -> Fraction | None:
        """The difference in percentage points; None when either period has no window."""
        now, before = self.current.share, self.previous.share
        if now is None or before is None:
            return None
        return (now - before) * 100

    def change_pts(self, places: int = 2) -> Decimal | None:
        change = self.change
        # Toward zero: a fall of 8.333 points shows as 8.33, as a rise would.
        return (
            None
            if change is None
            else -truncate(-change, places)
            if change < 0
            else truncate(change, places)
        )

    @property
    def trend(self) -> Trend | None:
        change = self.change
        if change is None:
            return None
        return "up" if change > 0 else "down" if change < 0 else "flat"


@dataclass(frozen=True, slots=True)
class Scope:
    """The rates of one customer, one plan (id None: contracts without a plan) or all."""

    kind: ScopeKind
    id: str | None
    rates: tuple[Rate, ...]

    @property
    def name(self) -> str:
        if self.kind == "overall":
            return "all contracts"
        return NO_PLAN if self.id is None else self.id

    def rate(self, kind: str, count: int) -> Rate | None:
        return next((r for r in self.rates if r.kind == kind and r.count == count), None)

    def longest(self) -> list[Rate]:
        """Per window kind, its longest period: what a one-line summary states."""
        out: dict[str, Rate] = {}
        for rate in self.rates:
            if rate.kind not in out or rate.count > out[rate.kind].count:
                out[rate.kind] = rate
        return list(out.values())


@dataclass(frozen=True, slots=True)
class Compliance:
    overall: Scope
    plans: tuple[Scope, ...]
    customers: tuple[Scope, ...]
    kinds: tuple[str, ...] = field(default=())  # the window kinds present, in KIND_ORDER

    def customer(self, customer_id: str) -> Scope | None:
        return next((s for s in self.customers if s.id == customer_id), None)

    def plan(self, plan_id: str | None) -> Scope | None:
        return next((s for s in self.plans if s.id == plan_id), None)


def _ago(kind: WindowKind, tz: ZoneInfo, now: datetime, most: int) -> dict[str, int]:
    """label -> how many windows back it ended (1: the one that ended last), for the
    last `most` windows of `kind` ended by `now` in zone `tz`."""
    window = window_containing(kind, tz, now)
    out: dict[str, int] = {}
    for back in range(1, most + 1):
        window = window.previous()
        out[window.label] = back
    return out


Key = tuple[ScopeKind, str | None]


def compliance(
    counts: Iterable[WindowCount],
    now: datetime,
    contracts: Mapping[str, ContractInfo],
) -> Compliance:
    """The rates of every scope, from the ledger's window counts as of `now`. A contract
    that is not (or no longer) configured counts under its row's customer and "no plan";
    a configured contract with no row yet still gives its customer and plan a scope."""
    calendars: dict[tuple[str, str], dict[str, int]] = {}
    # (scope, kind) -> windows back -> tally
    tallies: dict[Key, dict[str, dict[int, Tally]]] = {("overall", None): {}}
    for info in contracts.values():
        seeded: tuple[Key, ...] = (("plan", info.plan), ("customer", info.customer_id))
        for key in seeded:
            kinds = tallies.setdefault(key, {})
            if info.kind in PERIODS:
                kinds.setdefault(info.kind, {})
                tallies[("overall", None)].setdefault(info.kind, {})
    for count in counts:
        kind = label_kind(count.window_label)
        if kind is None or kind not in PERIODS:
            continue
        info = contracts.get(count.contract_id, ContractInfo(count.customer_id, None))
        keys: tuple[Key, ...] = (
            ("overall", None),
            ("plan", info.plan),
            ("customer", count.customer_id),
        )
        if (count.timezone, kind) not in calendars:
            calendars[(count.timezone, kind)] = _ago(
                kind, ZoneInfo(count.timezone), now, 2 * max(PERIODS[kind])
            )
        ago = calendars[(count.timezone, kind)]
        for key in keys:
            tallies.setdefault(key, {}).setdefault(kind, {})
        back = ago.get(count.window_label)
        # A window still running is not in the calendar (back 0), nor is one older than
        # the longest period's previous one; its end confirms it is over.
        if back is None or count.window_end > now or count.counted == 0:
            continue
        for key in keys:
            by_back = tallies[key][kind]
            by_back[back] = by_back.get(back, Tally()).add(count.met, count.counted)

    def scope(key: Key) -> Scope:
        rates = []
        for kind in KIND_ORDER:
            if kind not in tallies[key]:
                continue
            by_back = tallies[key][kind]
            for n in PERIODS[kind]:
                current, previous = Tally(), Tally()
                for back, tally in by_back.items():
                    if back <= n:
                        current = current.add(tally.met, tally.windows)
                    elif back <= 2 * n:
                        previous = previous.add(tally.met, tally.windows)
                rates.append(Rate(kind, n, current, previous))
        return Scope(key[0], key[1], tuple(rates))

    plans = sorted((k for k in tallies if k[0] == "plan"), key=lambda k: (k[1] is None, k[1]))
    customers = sorted((k for k in tallies if k[0] == "customer"), key=lambda k: k[1] or "")
    present = tallies[("overall", None)]
    return Compliance(
        overall=scope(("overall", None)),
        plans=tuple(scope(k) for k in plans),
        customers=tuple(scope(k) for k in customers),
        kinds=tuple(kind for kind in KIND_ORDER if kind in present),
    )


def summary(scope: Scope) -> list[str]:
    """What a customer's home page says: per window kind, its longest period, "99 of
    104 weeks met" (every window row counts: two links over 52 weeks are 104 weeks)."""
    lines = []
    if not scope.rates:
        return ["no windows yet"]
    for rate in scope.longest():
        tally = rate.current
        if tally.windows == 0:
            lines.append(f"no {unit(rate.kind, 2)} ended yet")
        else:
            lines.append(
                f"{tally.met} of {tally.windows} {unit(rate.kind, tally.windows)} met "
                f"in the {rate.label}"
            )
    return lines
