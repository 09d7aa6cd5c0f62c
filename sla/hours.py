"""Covered hours as instants: the part of any span that a contract's schedule covers.

A contract with `hours` (and `holidays`) is measured only inside its weekly schedule, in
its own zone (kernel/config/hours.py); the rest is excluded like announced maintenance.
`covered` turns the schedule's wall-clock ranges into exact instants for any span, not
only a window (an outage that began before a window is measured with it too), day by
day in the zone, so that a range on the night of a daylight-saving change is as long as
the clocks make it.

The rule for wall times the clock does not show once: a time is the first instant at
which the local clock reads it or later. So a time inside a spring-forward gap (02:30
when clocks jump from 02:00 to 03:00) is the end of the gap (03:00), and a time in the
repeated autumn hour is its first occurrence. "01:00-03:00" is one real hour on the
spring night, "00:00-06:00" seven on the autumn one.

Holidays are dates in the zone: a covered range that starts on one is not covered
(even where it runs past midnight into the next day); with no `hours`, a holiday
excludes its whole day. Pure: no I/O, no clock, integer microseconds only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING

from kernel.config import ResolvedTerms
from kernel.config.hours import MINUTES_PER_DAY, CoveredRange, covered_ranges, schedule_text
from sla.spans import SpanSet, from_us, to_us

if TYPE_CHECKING:
    from sla.report import ContractWindow

__all__ = ["covered", "describe", "schedule_of", "schedules", "wall_instant"]


def covered(
    hours: Sequence[CoveredRange] | None,
    holidays: Collection[date],
    tz: tzinfo,
    start: datetime,
    end: datetime,
) -> SpanSet:
    """The covered part of [start, end): the schedule's ranges (every hour when `hours`
    is None), less those starting on a holiday (or the holidays' whole days)."""
    ranges = None if hours is None else tuple(sorted(hours))
    return _covered(ranges, frozenset(holidays), tz, to_us(start), to_us(end))


@lru_cache(maxsize=4096)
def _covered(
    ranges: tuple[CoveredRange, ...] | None,
    holidays: frozenset[date],
    tz: tzinfo,
    start_us: int,
    end_us: int,
) -> SpanSet:
    # Contracts sharing a plan ask for the same windows again and again: cached.
    span = SpanSet.of([(start_us, end_us)])
    if not span:
        return span
    # A range of the day before the span's first local day may run into it.
    first = from_us(start_us).astimezone(tz).date() - timedelta(days=1)
    last = from_us(end_us).astimezone(tz).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if ranges is None:
        whole_days = [
            (wall_instant(d, 0, tz), wall_instant(d, MINUTES_PER_DAY, tz))
            for d in days
            if d in holidays
        ]
        return span - SpanSet.of(whole_days)
    found = [
        (wall_instant(day, r.start_min, tz), wall_instant(day, r.end_min, tz))
        for day in days
        if day not in holidays
        for r in ranges
        if r.weekday == day.weekday()
    ]
    return SpanSet.of(found) & span


def wall_instant(day: date, minute: int, tz: tzinfo) -> int:
    """The instant (microseconds since the epoch) `minute` minutes of wall time after
    local midnight of `day` (1440 and more: on the following days): the first instant
    at which the clock in `tz` reads that time or later."""
    days, rest = divmod(minute, MINUTES_PER_DAY)
    wall = datetime.combine(day + timedelta(days=days), time(rest // 60, rest % 60))
    readings = [wall.replace(tzinfo=tz, fold=fold) for fold in (0, 1)]
    instants = [to_us(r) for r in readings]
    shown = [i for i, r in zip(instants, readings, strict=True) if _reads(i, tz) == wall]
    if shown:
        return min(shown)  # the repeated hour: its first occurrence
    # In a gap: the clock jumps over `wall` at the transition, which lies between the
    # two readings; the first instant showing the later offset is where it lands.
    lo, hi = min(instants), max(instants)
    after = _offset(hi, tz)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(mid, tz) == after:
            hi = mid
        else:
            lo = mid
    return hi


def _reads(instant: int, tz: tzinfo) -> datetime:
    return from_us(instant).astimezone(tz).replace(tzinfo=None)


def _offset(instant: int, tz: tzinfo) -> timedelta | None:
    return from_us(instant).astimezone(tz).utcoffset()


def describe(hours: Sequence[CoveredRange] | None, holidays: Sequence[date], tz: tzinfo) -> str:
    """The schedule in words, with its zone: "Mon-Fri 08:00-18:00 Europe/Berlin; not on
    2026-12-25"."""
    zone = getattr(tz, "key", None) or str(tz)  # a ZoneInfo's IANA name
    return schedule_text(hours, holidays, zone)


def schedule_of(terms: ResolvedTerms, tz: tzinfo) -> str | None:
    """A contract's covered hours in words, or None when it measures every hour."""
    if terms.hours is None and not terms.holidays:
        return None
    ranges = None if terms.hours is None else covered_ranges(terms.hours)
    return describe(ranges, terms.holidays, tz)


def schedules(items: Iterable[ContractWindow]) -> dict[str, str]:
    """contract id -> its covered hours in words, for the contracts that have them."""
    found = {}
    for item in items:
        tz = item.result.window.start.tzinfo
        assert tz is not None
        text = schedule_of(item.terms, tz)
        if text is not None:
            found[item.contract.id] = text
    return found
