"""Contract windows: ISO weeks, calendar months, quarters and years in the contract's own
time zone.

A window runs from local midnight (Monday for a week, the 1st for a month, the 1st of
January, April, July or October for a quarter, the 1st of January for a year) to the
next, and its length is real elapsed time: a week with a DST change is 167 or 169 hours,
a year with both changes is exactly 365 (or 366) days.
A window exists for a contract only from its own start in its own zone (`has_begun`):
a label names different instants in different zones, so "2026-W50" can be running in
Tokyo while it has not begun in Berlin. Nothing here reads a clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

WindowKind = Literal["week", "month", "quarter", "year"]
WINDOW_KINDS: tuple[WindowKind, ...] = ("week", "month", "quarter", "year")
# The four forms a label takes, for every message that refuses one.
LABEL_FORMS = (
    "an ISO week like 2026-W47, a month like 2026-11, a quarter like 2026-Q3 or a year like 2026"
)

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q(\d)$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True, slots=True)
class Window:
    kind: WindowKind
    label: str  # "2026-W47", "2026-11", "2026-Q3" or "2026"
    start: datetime  # local midnight, tz-aware in the contract's zone
    end: datetime

    @property
    def length(self) -> timedelta:
        # Aware datetimes in one zone subtract as wall time; go through UTC for elapsed.
        return self.end.astimezone(UTC) - self.start.astimezone(UTC)

    def next(self) -> Window:
        return window_containing(self.kind, _zone(self.start), self.end)

    def previous(self) -> Window:
        return window_containing(self.kind, _zone(self.start), self.start - timedelta(days=1))

    def has_begun(self, now: datetime) -> bool:
        """Whether the window has started by `now`, as an instant (never by wall time)."""
        return has_begun(self, now)


def _zone(moment: datetime) -> ZoneInfo:
    assert isinstance(moment.tzinfo, ZoneInfo)
    return moment.tzinfo


def has_begun(window: Window, now: datetime) -> bool:
    """The one rule for whether a window exists yet: its start in its own zone is at or
    before `now`. Compared in UTC: aware datetimes sharing a tzinfo compare by wall time,
    which is ambiguous in the hour a DST change repeats."""
    return window.start.astimezone(UTC) <= now.astimezone(UTC)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    # Normalise through UTC: where a zone skips midnight, this lands on the first
    # existing instant of the day.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC).astimezone(tz)


def window_containing(kind: WindowKind, tz: ZoneInfo, moment: datetime) -> Window:
    local = moment.astimezone(tz)
    if kind == "week":
        year, week, _ = local.isocalendar()
        return _week(year, week, tz)
    if kind == "quarter":
        return _quarter(local.year, (local.month - 1) // 3 + 1, tz)
    if kind == "year":
        return _year(local.year, tz)
    return _month(local.year, local.month, tz)


def _week(year: int, week: int, tz: ZoneInfo) -> Window:
    monday = date.fromisocalendar(year, week, 1)
    return Window(
        "week",
        f"{year}-W{week:02d}",
        _midnight(monday, tz),
        _midnight(monday + timedelta(days=7), tz),
    )


def _month(year: int, month: int, tz: ZoneInfo) -> Window:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Window("month", f"{year}-{month:02d}", _midnight(first, tz), _midnight(following, tz))


def _quarter(year: int, quarter: int, tz: ZoneInfo) -> Window:
    first = date(year, 3 * quarter - 2, 1)
    following = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return Window("quarter", f"{year}-Q{quarter}", _midnight(first, tz), _midnight(following, tz))


def _year(year: int, tz: ZoneInfo) -> Window:
    first, following = date(year, 1, 1), date(year + 1, 1, 1)
    return Window("year", f"{year}", _midnight(first, tz), _midnight(following, tz))


def label_kind(label: str) -> WindowKind | None:
    """The kind of window a label names by its form alone (2026-W47 a week, 2026-11 a
    month, 2026-Q3 a quarter, 2026 a year); None for anything else."""
    if _WEEK.fullmatch(label):
        return "week"
    if _MONTH.fullmatch(label):
        return "month"
    if _QUARTER.fullmatch(label):
        return "quarter"
    return "year" if _YEAR.fullmatch(label) else None


def parse_window(label: str, tz: ZoneInfo) -> Window:
    """`2026-W47` (ISO week), `2026-11` (month), `2026-Q3` (quarter) or `2026` (year) in
    zone `tz`; ValueError otherwise."""
    if match := _WEEK.fullmatch(label):
        year, week = int(match.group(1)), int(match.group(2))
        try:
            return _week(year, week, tz)
        except ValueError:
            raise ValueError(f"{label!r}: {year} has no ISO week {week}") from None
    if match := _MONTH.fullmatch(label):
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            raise ValueError(f"{label!r}: month must be 01 to 12")
        return _month(year, month, tz)
    if match := _QUARTER.fullmatch(label):
        year, quarter = int(match.group(1)), int(match.group(2))
        if not 1 <= quarter <= 4:
            raise ValueError(f"{label!r}: quarter must be Q1 to Q4")
        return _quarter(year, quarter, tz)
    if match := _YEAR.fullmatch(label):
        return _year(int(match.group(1)), tz)
    raise ValueError(f"{label!r} is not a window; use {LABEL_FORMS}")
