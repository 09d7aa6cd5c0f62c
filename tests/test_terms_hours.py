"""Covered hours and holidays: the schedule's config, its instants (DST-exact), the
availability measured inside it, and `report sla` / the monthly report that state it."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from kernel.config import parse_config
from kernel.config.hours import CoveredRange, covered_ranges, schedule_text
from kernel.domain import LinkStatus, MaintenanceWindow
from sla.compute import Period, WindowTerms, compute_window
from sla.hours import covered, wall_instant
from sla.spans import US_PER_S, SpanSet, from_us, to_us
from sla.windows import parse_window
from tests.helpers import linkwatch, text_of
from tests.test_config import edit, problems

BERLIN = ZoneInfo("Europe/Berlin")
H = 3600 * US_PER_S


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


# --- config -------------------------------------------------------------------------------

RANGE_ALLOWED = (
    'use "HH:MM-HH:MM" from 00:00 to 24:00, e.g. "08:00-18:00" (an end at or before the '
    'start runs past midnight, e.g. "22:00-06:00"), or a list of such ranges'
)

MISTAKES = [
    pytest.param(
        edit("contracts.0.hours", {"mon-frx": "08:00-18:00"}),
        ["contracts[0].hours.mon-frx: 'mon-frx' is not a day; use mon, tue, wed, thu, fri, "
         "sat, sun, a run of them such as mon-fri, or daily"],
        id="unknown-day",
    ),
    pytest.param(
        edit("contracts.0.hours", {"fri-mon": "08:00-18:00"}),
        ["contracts[0].hours.fri-mon: 'fri-mon' runs backwards; a run of days goes from an "
         "earlier to a later day of the week (Monday first), e.g. mon-fri or sat-sun"],
        id="days-backwards",
    ),
    pytest.param(
        edit("contracts.0.hours", {"mon-fri": "08:00-18:00", "wed": "19:00-20:00"}),
        ["contracts[0].hours: wed is named twice (in 'mon-fri' and 'wed'); name each day "
         "once, with a list of ranges for several"],
        id="day-named-twice",
    ),
    pytest.param(
        edit("contracts.0.hours", {"daily": "08:00-18:00", "sat-sun": "19:00-20:00"}),
        ["contracts[0].hours: sat, sun are named twice (in 'daily' and 'sat-sun'); name each "
         "day once, with a list of ranges for several"],
        id="days-named-twice",
    ),
    pytest.param(
        edit("contracts.0.hours", {"mon": "08:00-25:00"}),
        [f"contracts[0].hours.mon: 25:00 in '08:00-25:00' is not a time; {RANGE_ALLOWED}"],
        id="bad-hour",
    ),
    pytest.param(
        edit("contracts.0.hours", {"mon": ["08:00-12:00", "13:60-18:00"]}),
        [f"contracts[0].hours.mon: 13:60 in '13:60-18:00' is not a time; {RANGE_ALLOWED}"],
        id="bad-minute-in-a-list",
    ),
    pytest.param(
        edit("contracts.0.hours", {"mon": "8-18"}),
        [f"contracts[0].hours.mon: '8-18' is not a time range; {RANGE_ALLOWED}"],
        id="not-a-range",
    ),
    pytest.param(
        edit("contracts.0.hours", {"mon": "24:00-06:00"}),
        ["contracts[0].hours.mon: '24:00-06:00' starts at 24:00, which is the end of a day; "
         'start at 00:00 to 23:59, e.g. "00:00-06:00" on the next day'],
        id="starts-at-24",
    ),
    pytest.param(
        edit("contracts.0.hours", {"mon": ["08:00-12:00", "11:00-13:00"]}),
        ["contracts[0].hours: '08:00-12:00' of mon overlaps '11:00-13:00' of mon on Mon "
         "11:00 to 12:00; covered ranges must not overlap: join them into one or shorten one"],
        id="overlapping-ranges",
    ),
    pytest.param(
        edit("contracts.0.hours", {"sun": "22:00-06:00", "mon": "05:00-07:00"}),
        ["contracts[0].hours: '05:00-07:00' of mon overlaps '22:00-06:00' of sun on Mon "
         "05:00 to 06:00; covered ranges must not overlap: join them into one or shorten one"],
        id="overlap-across-sunday-midnight",
    ),
    pytest.param(
        edit("contracts.0.hours", {"mon": []}),
        ['contracts[0].hours.mon: [] has no time range; give "HH:MM-HH:MM" or a list of '
         "them, or leave the day out"],
        id="empty-range",
    ),
    pytest.param(
        edit("contracts.0.hours", {}),
        ['contracts[0].hours: no day is covered; name days with their hours, e.g. {mon-fri: '
         '"08:00-18:00"}, or leave hours out to measure every hour'],
        id="no-day",
    ),
    pytest.param(
        edit("contracts.0.hours", "mon-fri 08:00-18:00"),
        ["contracts[0].hours: 'mon-fri 08:00-18:00' is not a schedule; map days to hours, "
         'e.g. {mon-fri: "08:00-18:00", sat: "09:00-13:00"}'],
        id="not-a-mapping",
    ),
    pytest.param(
        edit("contracts.0.holidays", ["2026-12-25", "25.12.2026", "2026-02-30"]),
        ["contracts[0].holidays[1]: '25.12.2026' is not a date; write it as YYYY-MM-DD, "
         "e.g. 2026-12-25",
         "contracts[0].holidays[2]: '2026-02-30' is not a date; write it as YYYY-MM-DD, "
         "e.g. 2026-12-25"],
        id="holiday-not-a-date",
    ),
    pytest.param(
        edit("contracts.0.holidays", [datetime(2026, 12, 25, 10)]),
        ["contracts[0].holidays[0]: 2026-12-25T10:00:00 is a moment, not a date; write the "
         "day as YYYY-MM-DD, e.g. 2026-12-25"],
        id="holiday-with-a-time",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("data", "expected"), MISTAKES)
def test_each_schedule_mistake_is_named_with_its_value_and_what_is_allowed(
    data: dict[str, Any], expected: list[str]
) -> None:
    assert problems(data) == expected


def test_a_plan_mistake_is_named_at_the_plan() -> None:
    data = edit("plans", [{"id": "office", "hours": {"mon-fri": "08:00-18:00", "tue": "x"}}])
    assert problems(data) == [
        f"plans[0].hours.tue: 'x' is not a time range; {RANGE_ALLOWED}",
    ]


def test_the_examples_schedule_is_valid_as_documented() -> None:
    example = (Path(__file__).resolve().parent.parent / "config" / "example.yaml").read_text()
    assert "    # hours: " in example
    text = example.replace("    # hours: ", "    hours: ").replace(
        "    # holidays: ", "    holidays: "
    )
    config = parse_config(text, environ={"SNMP_COMMUNITY": "public"})
    plan = config.plans[0]
    assert plan.hours == {"mon-fri": ["08:00-18:00"], "sat": ["09:00-12:00", "13:00-17:00"]}
    assert plan.holidays == [date(2026, 12, 25), date(2026, 12, 26)]


def _contract(**terms: Any) -> dict[str, Any]:
    data = edit("plans", [{"id": "office", "hours": {"mon-fri": "08:00-18:00"}}])
    data["contracts"][0] |= {"plan": "office", **terms}
    return data


def test_a_version_replaces_the_plans_schedule_whole() -> None:
    data = _contract(
        holidays=["2026-12-25"],
        versions=[{"effective_from": "2026-12-01T00:00:00+01:00", "hours": {"sat": "09:00-13:00"}}],
    )
    config = parse_config(yaml.safe_dump(data), environ={})
    contract, plans = config.contracts[0], config.plans
    before = contract.terms_at(datetime(2026, 11, 1, tzinfo=UTC), plans)
    after = contract.terms_at(datetime(2026, 12, 7, tzinfo=UTC), plans)
    assert before is not None
    assert after is not None
    assert before.hours == {"mon-fri": ["08:00-18:00"]}
    assert after.hours == {"sat": ["09:00-13:00"]}  # not Mon-Fri and Sat
    assert before.holidays == after.holidays == [date(2026, 12, 25)]


def test_no_schedule_is_every_hour() -> None:
    contract = parse_config(yaml.safe_dump(edit("contracts.0.target", 99)), environ={})
    terms = contract.contracts[0].terms_at(datetime(2026, 11, 1, tzinfo=UTC), [])
    assert terms is not None
    assert (terms.hours, terms.holidays) == (None, [])


@pytest.mark.parametrize(
    ("hours", "holidays", "text"),
    [
        pytest.param(
            {"mon-fri": "08:00-18:00"},
            [date(2026, 12, 25)],
            "Mon-Fri 08:00-18:00 Europe/Berlin; not on 2026-12-25",
            id="office-hours",
        ),
        pytest.param(
            {"mon-thu": ["08:00-12:00", "13:00-17:00"], "fri": "08:00-12:00", "sat": "22:00-06:00"},
            [],
            "Mon-Thu 08:00-12:00 and 13:00-17:00, Fri 08:00-12:00, Sat 22:00-06:00 Europe/Berlin",
            id="several-runs",
        ),
        pytest.param({"daily": "00:00-24:00"}, [], "Daily 00:00-24:00 Europe/Berlin", id="daily"),
        pytest.param(
            None,
            [date(2026, 12, 26), date(2026, 12, 25)],
            "Daily 00:00-24:00 Europe/Berlin; not on 2026-12-25, 2026-12-26",
            id="holidays-only",
        ),
    ],
)
def test_the_schedule_in_words(
    hours: dict[str, Any] | None, holidays: list[date], text: str
) -> None:
    lists = (
        None if hours is None else {k: v if isinstance(v, list) else [v] for k, v in hours.items()}
    )
    ranges = None if lists is None else covered_ranges(lists)
    assert schedule_text(ranges, holidays, "Europe/Berlin") == text


# --- instants ---------------------------------------------------------------------------


def _ranges(**hours: str | list[str]) -> tuple[CoveredRange, ...]:
    return covered_ranges(
        {k.replace("_", "-"): v if isinstance(v, list) else [v] for k, v in hours.items()}
    )


@pytest.mark.parametrize(
    ("day", "minute", "expected"),
    [
        pytest.param(
            date(2026, 11, 16), 8 * 60, datetime(2026, 11, 16, 7, tzinfo=UTC), id="winter"
        ),
        pytest.param(date(2026, 7, 6), 8 * 60, datetime(2026, 7, 6, 6, tzinfo=UTC), id="summer"),
        pytest.param(
            date(2026, 11, 16), 24 * 60, datetime(2026, 11, 16, 23, tzinfo=UTC), id="24:00"
        ),
        # Spring forward, Sun 2026-03-29: clocks jump from 02:00 to 03:00 (01:00 UTC).
        pytest.param(date(2026, 3, 29), 150, datetime(2026, 3, 29, 1, tzinfo=UTC), id="gap-02:30"),
        pytest.param(date(2026, 3, 29), 120, datetime(2026, 3, 29, 1, tzinfo=UTC), id="gap-02:00"),
        pytest.param(date(2026, 3, 29), 180, datetime(2026, 3, 29, 1, tzinfo=UTC), id="gap-end"),
        pytest.param(date(2026, 3, 29), 119, datetime(2026, 3, 29, 0, 59, tzinfo=UTC), id="gap-1"),
        # Fall back, Sun 2026-10-25: 02:00-03:00 happens twice; the first one counts.
        pytest.param(
            date(2026, 10, 25), 150, datetime(2026, 10, 25, 0, 30, tzinfo=UTC), id="repeat-02:30"
        ),
        pytest.param(
            date(2026, 10, 25), 180, datetime(2026, 10, 25, 2, tzinfo=UTC), id="after-repeat"
        ),
    ],
)
def test_a_wall_time_is_the_first_instant_the_clock_reads_it(
    day: date, minute: int, expected: datetime
) -> None:
    assert from_us(wall_instant(day, minute, BERLIN)) == expected


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


COVERED = [
    pytest.param(
        _ranges(mon_fri="08:00-18:00"),
        [],
        berlin(2026, 11, 16, 8),
        berlin(2026, 11, 16, 9),
        [(berlin(2026, 11, 16, 8), berlin(2026, 11, 16, 9))],
        id="exactly-at-08:00",
    ),
    pytest.param(
        _ranges(mon_fri="08:00-18:00"),
        [],
        berlin(2026, 11, 16, 7, 59),
        berlin(2026, 11, 16, 8),
        [],
        id="the-minute-before-08:00",
    ),
    pytest.param(
        _ranges(mon_fri="08:00-18:00"),
        [],
        berlin(2026, 11, 16, 18),
        berlin(2026, 11, 16, 19),
        [],
        id="from-18:00-on",
    ),
    pytest.param(
        _ranges(fri="22:00-06:00"),
        [],
        berlin(2026, 11, 20),
        berlin(2026, 11, 23),
        [(berlin(2026, 11, 20, 22), berlin(2026, 11, 21, 6))],
        id="crossing-midnight",
    ),
    pytest.param(
        _ranges(fri="22:00-06:00"),
        [],
        berlin(2026, 11, 21, 3),
        berlin(2026, 11, 21, 12),
        [(berlin(2026, 11, 21, 3), berlin(2026, 11, 21, 6))],
        id="a-span-starting-inside-last-nights-range",
    ),
    pytest.param(
        _ranges(sun="22:00-06:00"),
        [],
        berlin(2026, 11, 22, 12),
        berlin(2026, 11, 23, 12),
        [(berlin(2026, 11, 22, 22), berlin(2026, 11, 23, 6))],
        id="sunday-night-into-the-next-week",
    ),
    pytest.param(
        _ranges(sat="22:00-06:00"),
        [],
        berlin(2026, 3, 28, 12),
        berlin(2026, 3, 29, 12),
        [(_utc(2026, 3, 28, 21), _utc(2026, 3, 29, 4))],
        id="crossing-midnight-into-spring-forward-7h",
    ),
    pytest.param(
        _ranges(sat="22:00-06:00"),
        [],
        berlin(2026, 10, 24, 12),
        berlin(2026, 10, 25, 12),
        [(_utc(2026, 10, 24, 20), _utc(2026, 10, 25, 5))],
        id="crossing-midnight-into-fall-back-9h",
    ),
    pytest.param(
        _ranges(sun="02:30-04:00"),
        [],
        berlin(2026, 3, 29),
        berlin(2026, 3, 30),
        [(_utc(2026, 3, 29, 1), _utc(2026, 3, 29, 2))],
        id="start-in-the-spring-gap-is-its-end",
    ),
    pytest.param(
        _ranges(sun="02:00-03:00"),
        [],
        berlin(2026, 3, 29),
        berlin(2026, 3, 30),
        [],
        id="the-skipped-hour-is-empty",
    ),
    pytest.param(
        _ranges(sun="02:00-03:00"),
        [],
        berlin(2026, 10, 25),
        berlin(2026, 10, 26),
        [(_utc(2026, 10, 25, 0), _utc(2026, 10, 25, 2))],
        id="the-repeated-hour-is-covered-twice",
    ),
    pytest.param(
        _ranges(mon_fri="08:00-18:00"),
        [date(2026, 12, 25)],
        berlin(2026, 12, 24),
        berlin(2026, 12, 26),
        [(berlin(2026, 12, 24, 8), berlin(2026, 12, 24, 18))],
        id="holiday",
    ),
    pytest.param(
        _ranges(thu="22:00-06:00"),
        [date(2026, 12, 25)],
        berlin(2026, 12, 24),
        berlin(2026, 12, 26),
        [(berlin(2026, 12, 24, 22), berlin(2026, 12, 25, 6))],
        id="a-range-starting-the-day-before-a-holiday-is-covered",
    ),
    pytest.param(
        _ranges(fri="22:00-06:00"),
        [date(2026, 12, 25)],
        berlin(2026, 12, 24),
        berlin(2026, 12, 27),
        [],
        id="a-range-starting-on-a-holiday-is-not-even-after-midnight",
    ),
    pytest.param(
        None,
        [date(2026, 12, 25)],
        berlin(2026, 12, 24, 12),
        berlin(2026, 12, 26, 12),
        [(berlin(2026, 12, 24, 12), berlin(2026, 12, 25)),
         (berlin(2026, 12, 26), berlin(2026, 12, 26, 12))],
        id="no-hours-a-holiday-is-its-whole-day",
    ),
    pytest.param(
        None,
        [date(2026, 3, 29)],
        berlin(2026, 3, 28),
        berlin(2026, 3, 31),
        [(berlin(2026, 3, 28), berlin(2026, 3, 29)), (berlin(2026, 3, 30), berlin(2026, 3, 31))],
        id="a-23h-holiday",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("hours", "holidays", "start", "end", "expected"), COVERED)
def test_covered_part_of_a_span(
    hours: tuple[CoveredRange, ...] | None,
    holidays: list[date],
    start: datetime,
    end: datetime,
    expected: list[tuple[datetime, datetime]],
) -> None:
    found = covered(hours, holidays, BERLIN, start, end)
    assert found == SpanSet.of((to_us(a), to_us(b)) for a, b in expected)


@pytest.mark.parametrize(
    ("label", "hours"),
    [
        pytest.param("2026-W13", 167, id="spring-week-167h"),
        pytest.param("2026-W43", 169, id="autumn-week-169h"),
        pytest.param("2026-W47", 168, id="plain-week-168h"),
    ],
)
def test_a_whole_day_schedule_covers_the_real_length_of_a_dst_week(label: str, hours: int) -> None:
    window = parse_window(label, BERLIN)
    whole = covered(_ranges(daily="00:00-24:00"), [], BERLIN, window.start, window.end)
    assert whole.length_us == hours * H == to_us(window.end) - to_us(window.start)
    # The same week covered night by night, each 22:00 to 06:00: the night of the
    # change is one hour shorter or longer.
    nights = covered(_ranges(daily="22:00-06:00"), [], BERLIN, window.start, window.end)
    assert nights.length_us == (8 * 7 + hours - 168) * H


def test_covered_is_the_same_over_any_span_it_is_cut_from() -> None:
    # The restore clock asks about an outage that began before the window: the covered
    # part of a long span is the union of its pieces'.
    hours = _ranges(mon_fri="08:00-18:00", sat="22:00-06:00")
    start, end = berlin(2026, 10, 20, 13, 17), berlin(2026, 11, 3, 9, 41)
    cut = berlin(2026, 10, 25, 2, 30)  # inside the repeated hour
    whole = covered(hours, [date(2026, 10, 26)], BERLIN, start, end)
    parts = covered(hours, [date(2026, 10, 26)], BERLIN, start, cut) | covered(
        hours, [date(2026, 10, 26)], BERLIN, cut, end
    )
    assert whole == parts
    # Tue 13:17-18:00, Wed-Fri 30 h, Sat night 9 h (fall back), Mon a holiday, Tue-Fri
    # 40 h, Sat night 8 h, Mon 10 h, Tue 08:00-09:41.
    expected = timedelta(hours=4, minutes=43 + 41) + timedelta(hours=30 + 9 + 40 + 8 + 10 + 1)
    assert whole.length_us == expected // timedelta(microseconds=1)


# --- availability inside covered hours --------------------------------------------------

WEEK = parse_window("2026-W47", BERLIN)  # Mon 2026-11-16 00:00 CET .. Mon 2026-11-23
AFTER = WEEK.end + timedelta(days=1)
GOLD = WindowTerms(
    target_pct=Decimal("99.5"),
    fee=Decimal("250.00"),
    per_step_pct=Decimal("5"),
    cap_pct=Decimal("50"),
)
OFFICE = replace(GOLD, hours=_ranges(mon_fri="08:00-18:00"))  # 50 covered hours a week
UP, DOWN, UNKNOWN = LinkStatus.UP, LinkStatus.DOWN, LinkStatus.UNKNOWN


def _at(day: int, hour: float) -> datetime:
    """Local time in the week: day 0 is Monday."""
    return WEEK.start + timedelta(days=day, hours=hour)


def _timeline(*spans: tuple[datetime, datetime, LinkStatus]) -> list[Period]:
    """UP all week but for the given spans."""
    periods, cursor = [], WEEK.start
    for start, end, status in sorted(spans):
        if start > cursor:
            periods.append(Period(cursor, start, UP))
        periods.append(Period(start, end, status))
        cursor = end
    periods.append(Period(cursor, WEEK.end, UP))
    return periods


def _mw(start: datetime, end: datetime) -> MaintenanceWindow:
    return MaintenanceWindow("mw", start, end, start - timedelta(days=7), link_ids=("l",))


@dataclass(frozen=True)
class Hours:
    name: str
    terms: WindowTerms
    periods: list[Period]
    down_h: Fraction
    excluded_h: Fraction
    outside_h: Fraction
    eligible_h: Fraction
    outages: list[tuple[datetime, datetime]]
    maintenance: tuple[MaintenanceWindow, ...] = ()
    now: datetime = AFTER


AVAILABILITY = [
    Hours(
        "an outage half inside, half outside hours counts its covered half",
        OFFICE,
        _timeline((_at(0, 17), _at(0, 19), DOWN)),
        Fraction(1), Fraction(118), Fraction(118), Fraction(50),
        [(_at(0, 17), _at(0, 18))],
    ),
    Hours(
        "an outage ending exactly at 08:00 counts nothing",
        OFFICE,
        _timeline((_at(1, 7), _at(1, 8), DOWN)),
        Fraction(0), Fraction(118), Fraction(118), Fraction(50),
        [],
    ),
    Hours(
        "an outage starting exactly at 08:00 counts from then",
        OFFICE,
        _timeline((_at(1, 8), _at(1, 8.5), DOWN)),
        Fraction(1, 2), Fraction(118), Fraction(118), Fraction(50),
        [(_at(1, 8), _at(1, 8.5))],
    ),
    Hours(
        "an outage through the night is two outages of covered time",
        OFFICE,
        _timeline((_at(0, 17), _at(1, 9), DOWN)),
        Fraction(2), Fraction(118), Fraction(118), Fraction(50),
        [(_at(0, 17), _at(0, 18)), (_at(1, 8), _at(1, 9))],
    ),
    Hours(
        "unknown time outside hours is not unknown: it is excluded",
        OFFICE,
        _timeline((_at(5, 0), _at(7, 0), UNKNOWN)),
        Fraction(0), Fraction(118), Fraction(118), Fraction(50),
        [],
    ),
    Hours(
        "maintenance reaching past 18:00 excludes its covered part; outside hours once",
        OFFICE,
        _timeline((_at(0, 17), _at(0, 19), DOWN)),
        Fraction(0), Fraction(120), Fraction(118), Fraction(48),
        [],
        maintenance=(_mw(_at(0, 16), _at(0, 20)),),
    ),
    Hours(
        "a holiday without hours excludes its whole day",
        replace(GOLD, holidays=(date(2026, 11, 18),)),
        _timeline((_at(2, 23), _at(3, 1), DOWN)),
        Fraction(1), Fraction(24), Fraction(24), Fraction(144),
        [(_at(3, 0), _at(3, 1))],
    ),
    Hours(
        "a holiday in office hours drops that day's ten hours",
        replace(OFFICE, holidays=(date(2026, 11, 18),)),
        _timeline((_at(2, 9), _at(2, 10), DOWN)),
        Fraction(0), Fraction(128), Fraction(128), Fraction(40),
        [],
    ),
    Hours(
        "a running window: only the measured part's outside time is excluded",
        OFFICE,
        _timeline(),
        Fraction(0), Fraction(8), Fraction(8), Fraction(4),
        [],
        now=_at(0, 12),
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", AVAILABILITY, ids=lambda c: c.name)
def test_only_covered_time_is_measured(case: Hours) -> None:
    result = compute_window(WEEK, case.terms, [case.periods], [list(case.maintenance)], case.now)
    assert Fraction(result.down_us, H) == case.down_h
    assert Fraction(result.excluded_us, H) == case.excluded_h
    assert Fraction(result.outside_hours_us, H) == case.outside_h
    assert Fraction(result.eligible_us, H) == case.eligible_h
    assert result.outages == tuple((a.astimezone(UTC), b.astimezone(UTC)) for a, b in case.outages)
    assert result.incidents == len(case.outages)
    assert result.coverage == 1
    assert result.availability == (case.eligible_h - case.down_h) / case.eligible_h


def test_an_outage_half_in_office_hours_is_credited_on_the_covered_hours() -> None:
    # 1 h down of 50 covered hours: 98 %, a shortfall of 1.5 points -> 3 steps of 5 %.
    result = compute_window(WEEK, OFFICE, [AVAILABILITY[0].periods], [[]], AFTER)
    assert result.availability == Fraction(49, 50)
    assert result.credit.steps == 3
    assert result.credit.amount == Decimal("37.50")
    # The budget is 0.5 % of the covered hours: 900 s, not 0.5 % of the week.
    assert result.budget_us == Fraction(900 * US_PER_S)
    # Measured every hour, both hours count, of the whole week: 98.8095 %, 2 steps.
    every_hour = compute_window(WEEK, GOLD, [AVAILABILITY[0].periods], [[]], AFTER)
    assert every_hour.availability == Fraction(604800 - 7200, 604800)
    assert every_hour.credit.steps == 2


def test_the_budget_of_a_running_window_counts_every_covered_hour_ahead() -> None:
    result = compute_window(WEEK, OFFICE, [_timeline()], [[]], _at(0, 12))
    assert result.budget_us == Fraction(900 * US_PER_S)  # 0.5 % of 50 h, not of 4 h


def test_no_schedule_computes_exactly_as_before() -> None:
    periods = _timeline((_at(0, 17), _at(1, 9), DOWN), (_at(5, 0), _at(5, 2), UNKNOWN))
    maintenance = [[_mw(_at(2, 1), _at(2, 3))]]
    plain = compute_window(WEEK, GOLD, [periods], maintenance, AFTER)
    assert plain.outside_hours_us == 0
    everything = replace(GOLD, hours=_ranges(daily="00:00-24:00"))
    same = compute_window(WEEK, everything, [periods], maintenance, AFTER)
    assert same == plain


# --- `report sla` and the monthly report, on the embedded database ------------------------

W43 = parse_window("2026-W43", BERLIN)  # Mon 2026-10-19 .. Mon 2026-10-26: 169 h (DST ends)
W43_OUTAGE = (berlin(2026, 10, 20, 17), berlin(2026, 10, 20, 19))  # Tue, half in office hours


def _hours_config(directory: Path) -> Path:
    config = directory / "linkwatch.yaml"
    config.write_text(
        f"""\
data_dir: {directory}
customers:
  - {{id: acme, name: ACME Corp, timezone: Europe/Berlin}}
links:
  - {{id: acme-hq, customer: acme, probes: [{{id: icmp, kind: icmp, host: 127.0.0.1,
      interval: 1m}}]}}
plans:
  - {{id: office, target: 99.5, window: week, credit: {{step: 0.5, per_step: 5, cap: 50}},
      hours: {{mon-fri: "08:00-18:00"}}}}
contracts:
  - {{id: acme-office, customer: acme, links: [acme-hq], plan: office, fee: "100.00",
      holidays: [2026-10-23]}}
  - {{id: acme-always, customer: acme, links: [acme-hq], target: 99.5, window: week,
      fee: "100.00", credit: {{step: 0.5, per_step: 5, cap: 50}}}}
"""
    )
    return config


@pytest.fixture(scope="module")
def hours_loaded(pg_base_dir: Path) -> Path:
    directory = Path(tempfile.mkdtemp(dir=pg_base_dir))
    directory.chmod(0o711)
    config = _hours_config(directory)
    samples = directory / "w43.csv"
    with samples.open("w") as handle:
        handle.write("time,link,probe,outcome,rtt_ms,loss_pct\n")
        moment = W43.start.astimezone(UTC)
        while moment < W43.end:
            down = W43_OUTAGE[0] <= moment < W43_OUTAGE[1]
            outcome, rtt, loss = ("down", "", "100") if down else ("up", "4.2", "0")
            handle.write(f"{moment.isoformat()},acme-hq,icmp,{outcome},{rtt},{loss}\n")
            moment += timedelta(minutes=1)
    result = linkwatch("import", "samples", "--config", str(config), str(samples))
    assert result.returncode == 0, result.stderr
    return config


def test_report_sla_measures_only_covered_hours_and_states_the_schedule(
    hours_loaded: Path,
) -> None:
    args = ("report", "sla", "--config", str(hours_loaded), "--window", "2026-W43")
    result = linkwatch(*args, "--format", "json")
    assert result.returncode == 0, result.stderr
    office, always = json.loads(result.stdout)
    # Mon-Thu 08:00-18:00 (Friday is a holiday): 40 h of a 169 h week; one of the two
    # hours down is inside them: 97.5 %, 2 points short, 4 steps of 5 %.
    assert {k: office[k] for k in FIGURES} == {
        "contract": "acme-office",
        "window_s": 608400,
        "excluded_s": 608400 - 40 * 3600,
        "outside_hours_s": 608400 - 40 * 3600,
        "unknown_s": 0,
        "down_s": 3600,
        "eligible_s": 40 * 3600,
        "availability_pct": "97.5000",
        "incidents": 1,
        "budget_s": 720,
        "credit_pct": "20",
        "credit_amount": "20.00",
    }
    # The same link under a contract of every hour: both hours, of the whole week.
    assert {k: always[k] for k in FIGURES} == {
        "contract": "acme-always",
        "window_s": 608400,
        "excluded_s": 0,
        "outside_hours_s": 0,
        "unknown_s": 0,
        "down_s": 7200,
        "eligible_s": 608400,
        "availability_pct": "98.8165",
        "incidents": 1,
        "budget_s": 3042,
        "credit_pct": "10",
        "credit_amount": "10.00",
    }
    table = linkwatch(*args)
    assert table.returncode == 0, table.stderr
    *_, note = table.stdout.strip().splitlines()
    assert note == (
        "hours acme-office: Mon-Fri 08:00-18:00 Europe/Berlin; not on 2026-10-23 (only these "
        "hours are measured; the rest is excluded like announced maintenance)"
    )
    assert "acme-always:" not in table.stdout
    csv_text = linkwatch(*args, "--format", "csv").stdout
    assert "outside_hours_s" in csv_text.splitlines()[0].split(",")


FIGURES = (
    "contract", "window_s", "excluded_s", "outside_hours_s", "unknown_s", "down_s",
    "eligible_s", "availability_pct", "incidents", "budget_s", "credit_pct", "credit_amount",
)  # fmt: skip


def test_the_monthly_report_states_the_schedule_and_the_time_outside_it(
    hours_loaded: Path,
) -> None:
    result = linkwatch(
        "report", "monthly", "--config", str(hours_loaded), "--customer", "acme",
        "--month", "2026-10",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = text_of(result.stdout)
    assert (
        "Covered hours. Some contracts are measured only in covered hours, in the customer's "
        "time zone. Contract acme-office: Mon-Fri 08:00-18:00 Europe/Berlin; not on "
        "2026-10-23. Time outside these hours"
    ) in text
    assert (
        "Covered hours Mon-Fri 08:00-18:00 Europe/Berlin; not on 2026-10-23: only these hours "
        "are measured"
    ) in text
    assert (
        "Outside covered hours 464,400 s the contract measures only its covered hours "
        "(Mon-Fri 08:00-18:00 Europe/Berlin; not on 2026-10-23); the rest of the window is "
        "excluded like announced maintenance"
    ) in text
    assert "Excluded maintenance 0 s no maintenance was planned" in text
    assert (
        "Eligible time 144,000 s window − excluded − unknown = 608,400 − 464,400 − 0; "
        "excluded = maintenance + outside covered hours = 0 + 464,400"
    ) in text
    # The contract measured every hour shows no such line.
    always = text.split("Contract acme-always")[-1]
    assert "Outside covered hours" not in always
