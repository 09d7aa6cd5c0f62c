"""Contract terms that meet: the restore clock stops outside covered hours and over time
attributed to the customer, and a running outage's deadline lies in covered time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from kernel.config import Contract, ResolvedTerms
from kernel.config.hours import covered_ranges
from kernel.domain import LinkStatus
from sla.compute import Period, WindowTerms, compute_window
from sla.report import ContractWindow, Subject, restore_clock_at
from sla.restore import RestoreRule, clock_end_us
from sla.spans import SpanSet
from sla.windows import parse_window

BERLIN = ZoneInfo("Europe/Berlin")
W47 = parse_window("2026-W47", BERLIN)  # Mon 2026-11-16 .. Mon 2026-11-23, CET all week
W48 = parse_window("2026-W48", BERLIN)
H, DAY, US = timedelta(hours=1), timedelta(days=1), timedelta(microseconds=1)
FRIDAY = W47.start + 4 * DAY
NEXT_MONDAY = W48.start
OFFICE = covered_ranges({"mon-fri": ["08:00-18:00"]})
RULE = RestoreRule(4 * H, H, Decimal(5), Decimal(25), Decimal(90))
TERMS = WindowTerms(target_pct=Decimal("0.0001"), fee=Decimal("100.00"), restore=RULE, hours=OFFICE)
UP, DOWN = LinkStatus.UP, LinkStatus.DOWN


def down_between(start, end) -> list[Period]:  # type: ignore[no-untyped-def]
    return [
        Period(W47.start - DAY, start, UP),
        Period(start, end, DOWN),
        Period(end, W48.end + DAY, UP),
    ]


@dataclass(frozen=True)
class Case:
    name: str
    end: object  # when the outage from Friday 16:00 ends
    counted: timedelta
    units: int


CASES = [
    # Fri 16-18 (2 h) + Mon 08-10 (2 h): exactly the limit over the weekend.
    Case(
        "restored Monday 10:00: 4 h of covered time, at the limit", NEXT_MONDAY + 10 * H, 4 * H, 0
    ),
    Case("a microsecond later: one unit", NEXT_MONDAY + 10 * H + US, 4 * H + US, 1),
    Case("restored Saturday: only Friday's 2 h count", FRIDAY + DAY + 9 * H, 2 * H, 0),
    Case("restored Monday 13:00: 7 h, 3 units", NEXT_MONDAY + 13 * H, 7 * H, 3),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_restore_clock_runs_only_in_covered_hours(case: Case) -> None:
    periods = down_between(FRIDAY + 16 * H, case.end)
    window = W48 if case.end > W48.start else W47  # type: ignore[operator]
    result = compute_window(window, TERMS, [periods], [[]], W48.end + DAY)
    (billed,) = result.restores
    assert (timedelta(microseconds=billed.counted_us), billed.units) == (case.counted, case.units)


def test_every_hour_counts_without_covered_hours() -> None:
    periods = down_between(FRIDAY + 16 * H, NEXT_MONDAY + 10 * H)
    result = compute_window(W48, replace(TERMS, hours=None), [periods], [[]], W48.end)
    assert result.restores[0].counted_us == 66 * H // US


def test_time_attributed_to_the_customer_stops_the_clock_only_when_excluded() -> None:
    start = W47.start + DAY + 9 * H  # Tuesday 09:00, within office hours
    periods = down_between(start, start + 6 * H)
    caused = [[(start + H, start + 3 * H)]]
    every_hour = replace(TERMS, hours=None)
    excluded = compute_window(W47, every_hour, [periods], [[]], W48.start, customer_caused=caused)
    assert (excluded.restores[0].counted_us, excluded.restores[0].units) == (4 * H // US, 0)
    counted = compute_window(
        W47,
        replace(every_hour, customer_caused="count"),
        [periods],
        [[]],
        W48.start,
        customer_caused=caused,
    )
    assert (counted.restores[0].counted_us, counted.restores[0].units) == (6 * H // US, 2)


@pytest.mark.parametrize(
    ("left", "stops", "end"),
    [
        (5, [], 15),
        (5, [(12, 20)], 23),  # runs 2, stops 8, runs 3
        (5, [(15, 20)], 15),  # ends exactly where the stop begins
        (5, [(0, 12)], 17),  # already inside a stop: waits for its end
        (0, [(10, 20)], 10),
        (-3, [(0, 100)], 7),  # overdue: ended before the moment
    ],
)
def test_the_clock_end_skips_the_stops(left: int, stops: list[tuple[int, int]], end: int) -> None:
    assert clock_end_us(10, left, SpanSet.of(stops)) == end


def test_a_running_outage_deadline_waits_for_monday_morning() -> None:
    """Down since Friday 16:00 under office hours: 2 h counted by Friday 18:00, 2 h left,
    so at Saturday noon the deadline is Monday 10:00 and nothing has counted since."""
    now = FRIDAY + DAY + 12 * H
    periods = [Period(W47.start - DAY, FRIDAY + 16 * H, UP), Period(FRIDAY + 16 * H, now, DOWN)]
    terms = ResolvedTerms.model_validate(
        {
            "target": "99.9",
            "window": "week",
            "hours": {"mon-fri": ["08:00-18:00"]},
            "restore": {"within": "4h", "credit_pct": 5},
        }
    )
    computed_at = FRIDAY + 17 * H
    result = compute_window(W47, TERMS, [periods], [[]], computed_at)
    contract = Contract.model_validate(
        {"id": "c", "customer": "acme", "links": ["l"], "target": 99.9}
    )
    item = ContractWindow(contract, "acme", Subject("l", ("l",)), terms, result)
    timing = restore_clock_at(item, now)
    assert timing is not None
    assert timing.counted_us == 2 * H // US
    assert timing.deadline == (NEXT_MONDAY + 10 * H).astimezone(timing.deadline.tzinfo)
