"""Time to restore: the credit a contract's `restore` term gives each outage, pure and exact.

Each outage of a subject that ends inside a window, in (window start, measured end], is
billed in that window and counted from its confirmed start, even when that lies before
the window's start; an outage still running at the measured end is billed in the window
it ends in. The restore clock does not run over time the contract excludes (one
`SpanSet`, whatever the reasons). Up to `within` earns nothing (exactly at the limit is
nothing); beyond it each started `credit_per` earns `credit_pct`, and a window's sum is
capped at `cap_pct`. Integer microseconds and `Decimal` only; no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sla.spans import SpanSet, from_us

_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class RestoreRule:
    within: timedelta
    credit_per: timedelta
    credit_pct: Decimal
    cap_pct: Decimal
    warn_at_pct: Decimal = Decimal(80)  # share of `within` at which operations are warned


@dataclass(frozen=True, slots=True)
class Restore:
    """One outage billed in the window, with how long it counted against the contract."""

    start: datetime  # its confirmed start (may lie before the window's start)
    end: datetime
    counted_us: int  # its length less the excluded time inside it
    units: int  # started `credit_per` beyond `within`; 0 within the limit
    pct: Decimal  # units x credit_pct, before the window's cap

    @property
    def over(self) -> bool:
        return self.units > 0


@dataclass(frozen=True, slots=True)
class Continuing:
    """An outage still running at the measured end: billed in the window it ends in."""

    start: datetime
    counted_us: int  # so far, up to the measured end


def units_over(counted_us: int, rule: RestoreRule) -> int:
    """Started `credit_per` beyond `within`: 0 at or under the limit."""
    over = counted_us - rule.within // _US
    if over <= 0:
        return 0
    per = rule.credit_per // _US
    return -(-over // per)  # ceiling, in integers


def restores(
    outages: SpanSet,
    excluded: SpanSet,
    window_start_us: int,
    measured_end_us: int,
    rule: RestoreRule,
) -> tuple[tuple[Restore, ...], tuple[Continuing, ...]]:
    """The outages billed in the window, and those continuing past its measured end.

    `outages` are the subject's down spans, unclipped on both sides: a span reaching
    past `measured_end_us` is still running there. `excluded` is every time the contract
    excludes (qualifying maintenance, and whatever else the contract names).
    """
    billed: list[Restore] = []
    continuing: list[Continuing] = []
    for start, end in outages.spans:
        if end <= window_start_us:
            continue  # ended before the window: billed in an earlier one
        if end > measured_end_us:
            if start < measured_end_us:
                span = SpanSet(((start, measured_end_us),))
                counted = (span - excluded).length_us
                continuing.append(Continuing(from_us(start), counted))
            continue
        counted = (SpanSet(((start, end),)) - excluded).length_us
        units = units_over(counted, rule)
        billed.append(
            Restore(from_us(start), from_us(end), counted, units, units * rule.credit_pct)
        )
    return tuple(billed), tuple(continuing)


def restore_pct(billed: tuple[Restore, ...], rule: RestoreRule) -> Decimal:
    """The window's restore credit: the outages' sum, at most the rule's own cap."""
    return min(rule.cap_pct, sum((r.pct for r in billed), Decimal(0)))


def warn_at_us(rule: RestoreRule) -> int:
    """How much of `within` an outage has counted when operations are warned."""
    return share_us(rule.within // _US, rule.warn_at_pct)


def share_us(micros: int, pct: Decimal) -> int:
    """`pct` % of `micros`, rounded down: a warning never comes later than asked."""
    return int(micros * pct / 100)


def clock_end_us(from_us: int, left_us: int, stops: SpanSet) -> int:
    """The instant the restore clock, at `from_us` with `left_us` still to run, reaches
    its end when it does not run over `stops` (time outside covered hours, say): the
    deadline of a running outage. A clock already past its end (`left_us` < 0) ended
    that long before `from_us`."""
    if left_us <= 0:
        return from_us + left_us
    at, remaining = from_us, left_us
    for start, end in stops.spans:
        if end <= at:
            continue
        if start > at:
            if start - at >= remaining:
                break
            remaining -= start - at
        at = end
    return at + remaining
