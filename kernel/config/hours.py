"""Covered hours and holidays of a contract: the weekly schedule its SLA is measured in.

`hours` maps a day (`mon`..`sun`), a run of days (`mon-fri`) or `daily` to one time range
"HH:MM-HH:MM" or a list of them, in the contract's zone; "00:00-24:00" is the whole day
and an end at or before the start runs past midnight into the next day. `holidays` are
dates in the same zone. Validation names every mistake with the value and what is
allowed; `covered_ranges` turns a valid mapping into the ranges the SLA engine reads and
`schedule_text` into words. Nothing here turns a wall time into an instant (that is
`sla.hours`, which knows the zone's daylight-saving changes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from kernel.formatting import excerpt

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
_WEEK_MINUTES = 7 * MINUTES_PER_DAY
_RANGE = re.compile(r"^\s*(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_DAYS_ALLOWED = "mon, tue, wed, thu, fri, sat, sun, a run of them such as mon-fri, or daily"
_RANGE_ALLOWED = (
    'use "HH:MM-HH:MM" from 00:00 to 24:00, e.g. "08:00-18:00" (an end at or before the '
    'start runs past midnight, e.g. "22:00-06:00"), or a list of such ranges'
)


@dataclass(frozen=True, slots=True, order=True)
class CoveredRange:
    """Covered from `start_min` to `end_min` minutes after local midnight of every
    `weekday` (0 = Monday). `end_min` may pass 1440: the range runs into the next day."""

    weekday: int
    start_min: int
    end_min: int  # start_min < end_min <= start_min + 1440


def day_set(key: str) -> tuple[int, ...]:
    """The weekdays (0 = Monday) a key of `hours` names; ValueError saying what is allowed."""
    name = key.strip().lower() if isinstance(key, str) else key
    if name == "daily":
        return tuple(range(7))
    if name in DAYS:
        return (DAYS.index(name),)
    first, dash, last = name.partition("-") if isinstance(name, str) else ("", "", "")
    if dash and first in DAYS and last in DAYS:
        a, b = DAYS.index(first), DAYS.index(last)
        if a < b:
            return tuple(range(a, b + 1))
        raise ValueError(
            f"{excerpt(key)} runs backwards; a run of days goes from an earlier to a later "
            "day of the week (Monday first), e.g. mon-fri or sat-sun"
        )
    raise ValueError(f"{excerpt(key)} is not a day; use {_DAYS_ALLOWED}")


def _minutes(text: str, hours: str, minutes: str, whole: str) -> int:
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and m):
        raise ValueError(f"{text} in {excerpt(whole)} is not a time; {_RANGE_ALLOWED}")
    return h * 60 + m


def parse_range(text: object) -> tuple[int, int]:
    """(start, end) minutes after midnight of "HH:MM-HH:MM"; an end at or before the start
    is on the next day (end > 1440)."""
    match = _RANGE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{excerpt(text)} is not a time range; {_RANGE_ALLOWED}")
    sh, sm, eh, em = match.groups()
    assert isinstance(text, str)
    start = _minutes(f"{sh}:{sm}", sh, sm, text)
    end = _minutes(f"{eh}:{em}", eh, em, text)
    if start == MINUTES_PER_DAY:
        raise ValueError(
            f"{excerpt(text)} starts at 24:00, which is the end of a day; start at 00:00 to "
            '23:59, e.g. "00:00-06:00" on the next day'
        )
    if end <= start:
        end += MINUTES_PER_DAY
    return start, end


def _ranges(value: object) -> list[str]:
    """One range or a list of them, each checked; the list is kept as written."""
    listed = value if isinstance(value, list) else [value]
    if not listed or listed == [""]:
        raise ValueError(
            f'{excerpt(value)} has no time range; give "HH:MM-HH:MM" or a list of them, '
            "or leave the day out"
        )
    problems = []
    for item in listed:
        try:
            parse_range(item)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return [str(item) for item in listed]


def _day_key(value: object) -> object:
    if isinstance(value, str):
        day_set(value)
    return value


def _instances(hours: Mapping[str, Sequence[str]]) -> list[tuple[str, str, int, int, int]]:
    """(key, range text, weekday, start, end) for every day a key names."""
    return [
        (key, text, day, *parse_range(text))
        for key, texts in hours.items()
        for text in texts
        for day in day_set(key)
    ]


def _schedule(hours: dict[str, list[str]]) -> dict[str, list[str]]:
    """Rules across the days: each day named once, no two ranges covering the same time."""
    if not hours:
        raise ValueError(
            'no day is covered; name days with their hours, e.g. {mon-fri: "08:00-18:00"}, '
            "or leave hours out to measure every hour"
        )
    problems = []
    named: dict[int, str] = {}
    for key in hours:
        twice: dict[str, list[str]] = {}  # earlier key -> the days it named already
        for day in day_set(key):
            if day in named:
                twice.setdefault(named[day], []).append(DAYS[day])
            else:
                named[day] = key
        for earlier, days in twice.items():
            problems.append(
                f"{', '.join(days)} {'is' if len(days) == 1 else 'are'} named twice (in "
                f"{excerpt(earlier)} and {excerpt(key)}); name each day once, with a list of "
                "ranges for several"
            )
    if not problems:
        problems += _overlaps(_instances(hours))
    if problems:
        raise ValueError("; ".join(problems))
    return hours


def _overlaps(instances: list[tuple[str, str, int, int, int]]) -> list[str]:
    """Ranges that cover the same time of the week, a range past Sunday midnight
    continuing on Monday; each pair once."""
    pieces = []
    for n, (_, _, day, start, end) in enumerate(instances):
        lo, hi = day * MINUTES_PER_DAY + start, day * MINUTES_PER_DAY + end
        pieces.append((lo, min(hi, _WEEK_MINUTES), n))
        if hi > _WEEK_MINUTES:
            pieces.append((0, hi - _WEEK_MINUTES, n))
    found: dict[tuple[int, int], tuple[int, int]] = {}
    for i, (lo1, hi1, a) in enumerate(pieces):
        for lo2, hi2, b in pieces[i + 1 :]:
            lo, hi = max(lo1, lo2), min(hi1, hi2)
            if a != b and lo < hi:
                found.setdefault((min(a, b), max(a, b)), (lo, hi))
    problems = []
    for (a, b), (lo, hi) in sorted(found.items()):
        (key_a, text_a, *_), (key_b, text_b, *_) = instances[a], instances[b]
        problems.append(
            f"{excerpt(text_a)} of {key_a} overlaps {excerpt(text_b)} of {key_b} on "
            f"{_between(lo, hi)}; covered ranges must not overlap: "
            "join them into one or shorten one"
        )
    return problems


def _week_minute(minute: int) -> str:
    day, rest = divmod(minute, MINUTES_PER_DAY)
    return f"{DAYS[day % 7].title()} {rest // 60:02d}:{rest % 60:02d}"


def _between(lo: int, hi: int) -> str:
    """A stretch of the week: "Mon 11:00 to 12:00", "Sun 23:00 to Mon 01:00"."""
    start, end = _week_minute(lo), _week_minute(hi)
    if hi - lo <= MINUTES_PER_DAY and (
        lo // MINUTES_PER_DAY == hi // MINUTES_PER_DAY or hi % MINUTES_PER_DAY == 0
    ):
        end = _clock(hi - lo // MINUTES_PER_DAY * MINUTES_PER_DAY)
    return f"{start} to {end}"


def _a_mapping(value: object) -> object:
    if not isinstance(value, dict):
        raise ValueError(
            f"{excerpt(value)} is not a schedule; map days to hours, e.g. "
            '{mon-fri: "08:00-18:00", sat: "09:00-13:00"}'
        )
    return value


def _holiday(value: object) -> object:
    if isinstance(value, datetime):
        raise ValueError(
            f"{value.isoformat()} is a moment, not a date; write the day as YYYY-MM-DD, "
            "e.g. 2026-12-25"
        )
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{excerpt(value)} is not a date; write it as YYYY-MM-DD, e.g. 2026-12-25")


TimeRanges = Annotated[Any, AfterValidator(_ranges)]
DayKey = Annotated[str, BeforeValidator(_day_key)]
CoveredHours = Annotated[
    dict[DayKey, TimeRanges], BeforeValidator(_a_mapping), AfterValidator(_schedule)
]
Holiday = Annotated[date, BeforeValidator(_holiday)]


def covered_ranges(hours: Mapping[str, Sequence[str]]) -> tuple[CoveredRange, ...]:
    """A valid `hours` mapping as ranges, sorted by weekday and start."""
    return tuple(sorted(CoveredRange(day, s, e) for _, _, day, s, e in _instances(hours)))


def schedule_text(
    ranges: Sequence[CoveredRange] | None, holidays: Sequence[date], zone: str
) -> str:
    """The schedule in words: "Mon-Fri 08:00-18:00 Europe/Berlin; not on 2026-12-25".
    Consecutive days with the same ranges are named as a run."""
    if ranges is None:
        days = "Daily 00:00-24:00"
    else:
        by_day: list[tuple[tuple[int, int], ...]] = [
            tuple((r.start_min, r.end_min) for r in ranges if r.weekday == day) for day in range(7)
        ]
        runs: list[tuple[int, int]] = []
        for day in range(7):
            if not by_day[day]:
                continue
            if runs and runs[-1][1] == day - 1 and by_day[runs[-1][0]] == by_day[day]:
                runs[-1] = (runs[-1][0], day)
            else:
                runs.append((day, day))
        parts = []
        for first, last in runs:
            name = DAYS[first].title()
            if (first, last) == (0, 6):
                name = "Daily"
            elif last > first:
                name += f"-{DAYS[last].title()}"
            times = " and ".join(f"{_clock(s)}-{_clock(e)}" for s, e in by_day[first])
            parts.append(f"{name} {times}")
        days = ", ".join(parts)
    text = f"{days} {zone}"
    if holidays:
        text += "; not on " + ", ".join(d.isoformat() for d in sorted(set(holidays)))
    return text


def _clock(minute: int) -> str:
    # An end past midnight reads as the next day's clock time, as it was written; the
    # end of a day stays 24:00.
    if minute > MINUTES_PER_DAY:
        minute -= MINUTES_PER_DAY
    return f"{minute // 60:02d}:{minute % 60:02d}"
