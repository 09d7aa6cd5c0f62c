"""SLA golden cases, one per rule boundary, and properties over random timelines."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.domain import LinkStatus, MaintenanceWindow
from sla.compute import (
    Band,
    IncidentRule,
    Measurements,
    Objective,
    Period,
    WindowResult,
    WindowTerms,
    compute_credit,
    compute_window,
    seconds,
    truncate_pct,
)
from sla.spans import SpanSet
from sla.windows import parse_window, window_containing

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = parse_window("2026-W47", BERLIN)  # Mon 2026-11-16 00:00 CET .. Mon 2026-11-23
START = WEEK.start
AFTER = WEEK.end + timedelta(days=1)  # a "now" after the window: it is complete
GOLD = WindowTerms(
    target_pct=Decimal("99.5"),
    fee=Decimal("250.00"),
    per_step_pct=Decimal("5"),
    cap_pct=Decimal("50"),
)
UP, DOWN, UNKNOWN = LinkStatus.UP, LinkStatus.DOWN, LinkStatus.UNKNOWN


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def timeline(*downs: tuple[float, float], end: datetime | None = None) -> list[Period]:
    """UP for the whole window except the given (start_h, end_h) DOWN spans."""
    periods, cursor = [], START
    for begin, finish in sorted(downs):
        if at(begin) > cursor:
            periods.append(Period(cursor, at(begin), UP))
        periods.append(Period(at(begin), at(finish), DOWN))
        cursor = at(finish)
    periods.append(Period(cursor, end or WEEK.end, UP))
    return periods


def down_seconds(total: int) -> list[Period]:
    return [
        Period(START, START + timedelta(days=1), UP),
        Period(START + timedelta(days=1), START + timedelta(days=1, seconds=total), DOWN),
        Period(START + timedelta(days=1, seconds=total), WEEK.end, UP),
    ]


def mw(
    start_h: float,
    end_h: float,
    notice: timedelta,
    mw_id: str = "mw",
    *,
    cancelled_h: float | None = None,
) -> MaintenanceWindow:
    return MaintenanceWindow(
        mw_id,
        at(start_h),
        at(end_h),
        at(start_h) - notice,
        link_ids=("l",),
        cancelled_at=None if cancelled_h is None else at(cancelled_h),
    )


def one(
    periods: list[Period],
    terms: WindowTerms = GOLD,
    maintenance: tuple[MaintenanceWindow, ...] = (),
    now: datetime = AFTER,
) -> WindowResult:
    return compute_window(WEEK, terms, [periods], [list(maintenance)], now)


@dataclass(frozen=True)
class Case:
    name: str
    periods: list[Period]
    terms: WindowTerms
    availability: str | None  # truncated display, e.g. "99.4047"
    steps: int
    credit_pct: str
    amount: str
    maintenance: tuple[MaintenanceWindow, ...] = ()


CASES = [
    Case(
        "DESIGN example: 3,600 s down in a 604,800 s week -> 1 step",
        down_seconds(3600),
        GOLD,
        "99.4047",
        1,
        "5",
        "12.50",
    ),
    Case("exactly at target: no step", down_seconds(3024), GOLD, "99.5000", 0, "0", "0.00"),
    Case(
        "shortfall exactly 0.5 with ceil: 1 step",
        down_seconds(6048),
        GOLD,
        "99.0000",
        1,
        "5",
        "12.50",
    ),
    Case(
        "shortfall exactly 0.5 with floor: 1 step",
        down_seconds(6048),
        replace(GOLD, rounding="floor"),
        "99.0000",
        1,
        "5",
        "12.50",
    ),
    Case(
        "a hair over 0.5 with ceil: 2 steps", down_seconds(6049), GOLD, "98.9998", 2, "10", "25.00"
    ),
    Case(
        "a hair over 0.5 with floor: 1 step",
        down_seconds(6049),
        replace(GOLD, rounding="floor"),
        "98.9998",
        1,
        "5",
        "12.50",
    ),
    Case("cap reached", down_seconds(86400), GOLD, "85.7142", 28, "50", "125.00"),
    Case(
        "minimum credit: 5 % of 10.00 is under 1.00",
        down_seconds(3600),
        replace(GOLD, fee=Decimal("10.00"), minimum_credit=Decimal("1.00")),
        "99.4047",
        1,
        "5",
        "0.00",
    ),
    Case(
        "amounts round half up in minor units",
        down_seconds(3600),
        replace(GOLD, fee=Decimal("0.10")),
        "99.4047",
        1,
        "5",
        "0.01",
    ),
    Case(
        "zero-decimal currency",
        down_seconds(3600),
        replace(GOLD, fee=Decimal("40010"), currency="JPY"),
        "99.4047",
        1,
        "5",
        "2001",
    ),
    Case("all unknown, exclude: n/a and no credit", [], GOLD, None, 0, "0", "0.00"),
    Case(
        "all unknown, count_as_up: 100 %",
        [],
        replace(GOLD, unknown="count_as_up"),
        "100.0000",
        0,
        "0",
        "0.00",
    ),
    Case(
        "all unknown, count_as_down: 0 %, capped",
        [],
        replace(GOLD, unknown="count_as_down"),
        "0.0000",
        199,
        "50",
        "125.00",
    ),
    Case(
        "maintenance announced too late counts",
        timeline((30, 32)),
        GOLD,
        "98.8095",
        2,
        "10",
        "25.00",
        (mw(30, 32, timedelta(hours=20)),),
    ),
    Case(
        "maintenance announced in time is excluded",
        timeline((30, 32)),
        GOLD,
        "100.0000",
        0,
        "0",
        "0.00",
        (mw(30, 32, timedelta(days=7)),),
    ),
    Case(
        "maintenance overlapping an outage: only the overlap is excused",
        timeline((29, 31)),
        GOLD,
        "99.3975",
        1,
        "5",
        "12.50",
        (mw(30, 32, timedelta(days=7)),),
    ),
    Case(
        "overrun past the announced end counts",
        timeline((30, 33)),
        GOLD,
        "99.3975",
        1,
        "5",
        "12.50",
        (mw(30, 32, timedelta(days=7)),),
    ),
    Case(
        "maintenance cancelled before it began excludes nothing",
        timeline((30, 32)),
        GOLD,
        "98.8095",
        2,
        "10",
        "25.00",
        (mw(30, 32, timedelta(days=7), cancelled_h=12),),
    ),
    Case(
        "maintenance stopped early is excluded only until it stopped",
        timeline((30, 32)),
        GOLD,
        "99.4011",
        1,
        "5",
        "12.50",
        (mw(30, 32, timedelta(days=7), cancelled_h=31),),
    ),
    Case(
        "maintenance cancelled after it ended is excluded as it was",
        timeline((30, 32)),
        GOLD,
        "100.0000",
        0,
        "0",
        "0.00",
        (mw(30, 32, timedelta(days=7), cancelled_h=40),),
    ),
    Case(
        "bands: the highest band below which availability falls",
        down_seconds(4800),
        replace(
            GOLD,
            per_step_pct=Decimal("0"),
            bands=(Band(Decimal("99.5"), Decimal("10")), Band(Decimal("99.0"), Decimal("25"))),
        ),
        "99.2063",
        0,
        "10",
        "25.00",
    ),
    Case(
        "incident rule: three outages of at least 5 min add 10 %",
        timeline((1, 1.1), (20, 20.1), (50, 50.1)),
        replace(GOLD, incident_rule=IncidentRule(3, timedelta(minutes=5), Decimal("10"))),
        "99.8214",
        0,
        "10",
        "25.00",
    ),
    Case(
        "incident rule: a short outage does not count",
        timeline((1, 1.1), (20, 20.1), (50, 50.05)),
        replace(GOLD, incident_rule=IncidentRule(3, timedelta(minutes=5), Decimal("10"))),
        "99.8511",
        0,
        "0",
        "0.00",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_cases(case: Case) -> None:
    result = one(case.periods, case.terms, case.maintenance)
    assert truncate_pct(result.availability) == (
        None if case.availability is None else Decimal(case.availability)
    )
    assert result.credit.steps == case.steps
    assert result.credit.total_pct == Decimal(case.credit_pct)
    assert result.credit.amount == Decimal(case.amount)
    assert str(result.credit.amount) == case.amount  # minor units, exactly


def test_design_example_in_full() -> None:
    result = one(down_seconds(3600))
    assert seconds(result.window_us) == 604800
    assert seconds(result.down_us) == 3600
    assert seconds(result.eligible_us) == 604800
    assert result.met is False
    assert result.incidents == 1
    assert result.coverage == 1
    assert result.budget_us == Fraction(3024 * 10**6)
    assert result.budget_used == Fraction(3600, 3024)


def test_display_truncates_never_rounds_up() -> None:
    assert truncate_pct(Fraction(9999995, 10**7) - Fraction(1, 10**9)) == Decimal("99.9999")
    assert truncate_pct(Fraction(99_49995, 100_00000)) == Decimal("99.4999")


def test_unknown_time_is_reported_and_excluded_by_default() -> None:
    periods = [Period(START, at(24), UP), Period(at(30), WEEK.end, UP)]  # 6 h without data
    result = one(periods)
    assert seconds(result.unknown_us) == 6 * 3600
    assert seconds(result.eligible_us) == 604800 - 6 * 3600
    assert result.availability == 1
    assert result.coverage == Fraction(162, 168)
    as_down = one(periods, replace(GOLD, unknown="count_as_down"))
    assert seconds(as_down.down_us) == 6 * 3600
    assert as_down.incidents == 1


def test_excluded_time_takes_precedence_over_unknown() -> None:
    periods = [Period(START, at(30), UP), Period(at(32), WEEK.end, UP)]
    result = one(periods, maintenance=(mw(29, 33, timedelta(days=7)),))
    assert result.unknown_us == 0
    assert seconds(result.excluded_us) == 4 * 3600
    assert [d.excluded for d in result.maintenance] == [True]
    assert "announced 7 d ahead" in result.maintenance[0].reason


def test_cancelled_maintenance_says_what_it_still_excludes() -> None:
    withdrawn, stopped = (
        mw(30, 32, timedelta(days=7), "a", cancelled_h=29),
        mw(40, 42, timedelta(days=7), "b", cancelled_h=41.5),
    )
    result = one(timeline(), maintenance=(withdrawn, stopped))
    assert [(d.window.id, d.excluded) for d in result.maintenance] == [("a", False), ("b", True)]
    assert result.maintenance[0].reason == "cancelled before it began, so it excludes nothing"
    assert result.maintenance[1].reason.endswith(
        "; cancelled 1 h 30 min after it began, excluded only until then"
    )
    assert result.excluded_us == 90 * 60 * 1_000_000


def test_late_maintenance_says_why_it_counted() -> None:
    result = one(timeline(), maintenance=(mw(30, 32, timedelta(hours=20)),))
    assert result.maintenance[0].excluded is False
    assert result.maintenance[0].reason == (
        "announced only 20 h ahead; the contract requires 3 d, so it counts normally"
    )


def test_notice_a_minute_short_never_reads_as_the_notice_required() -> None:
    """Durations in reasons are truncated like every duration people read: 71 h 59 min
    once read "72.0 h ahead; the contract requires 72 h"."""
    short = one(timeline(), maintenance=(mw(30, 32, timedelta(hours=72) - timedelta(minutes=1)),))
    assert short.maintenance[0].reason == (
        "announced only 2 d 23 h ahead; the contract requires 3 d, so it counts normally"
    )
    late = one(timeline(), maintenance=(mw(30, 32, -timedelta(minutes=5)),))
    assert late.maintenance[0].reason == (
        "announced only once it had begun; the contract requires 3 d, so it counts normally"
    )


@pytest.mark.parametrize(
    ("label", "hours"),
    [
        ("2026-W13", 167),
        ("2026-W43", 169),
        ("2026-W47", 168),
        ("2026-03", 743),
        ("2026-10", 745),
        ("2026-02", 672),
    ],
)
def test_windows_are_real_elapsed_time_across_dst(label: str, hours: int) -> None:
    window = parse_window(label, BERLIN)
    assert window.length == timedelta(hours=hours)
    periods = [Period(window.start, window.end, UP)]
    result = compute_window(window, GOLD, [periods], [[]], window.end)
    assert seconds(result.window_us) == hours * 3600
    assert result.availability == 1


def test_week_starts_monday_midnight_local() -> None:
    assert WEEK.start.isoformat() == "2026-11-16T00:00:00+01:00"
    assert WEEK.end.isoformat() == "2026-11-23T00:00:00+01:00"
    moment = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)  # Monday 00:30 in Berlin
    assert window_containing("week", BERLIN, moment).label == "2026-W48"
    assert (
        window_containing(
            "month", ZoneInfo("Asia/Tokyo"), datetime(2026, 11, 30, 16, tzinfo=UTC)
        ).label
        == "2026-12"
    )


@pytest.mark.parametrize("label", ["2026-W54", "2026-13", "2026-w47", "47", "2026-11-01"])
def test_bad_window_labels_say_what_is_allowed(label: str) -> None:
    with pytest.raises(ValueError, match=label):
        parse_window(label, BERLIN)


def test_a_window_that_starts_inside_an_outage_counts_only_its_part() -> None:
    periods = [
        Period(START - timedelta(hours=5), START + timedelta(hours=1), DOWN),
        Period(START + timedelta(hours=1), WEEK.end, UP),
    ]
    result = one(periods)
    assert seconds(result.down_us) == 3600
    assert result.outages == (
        (START.astimezone(UTC), (START + timedelta(hours=1)).astimezone(UTC)),
    )


def test_a_redundant_group_is_down_only_while_every_member_is() -> None:
    a = timeline((10, 11), (40, 41))
    b = timeline((10.5, 11.5), (60, 61))
    result = compute_window(WEEK, GOLD, [a, b], [[], []], AFTER)
    assert seconds(result.down_us) == 1800
    assert result.incidents == 1
    # Maintenance on one path does not excuse the group: only both at once would.
    only_a = compute_window(WEEK, GOLD, [a, b], [[mw(10, 11, timedelta(days=7))], []], AFTER)
    assert only_a.excluded_us == 0
    assert seconds(only_a.down_us) == 1800


def test_a_running_window_is_measured_so_far_with_the_budget_of_the_whole_window() -> None:
    now = at(48)
    result = one(timeline((10, 10.5), end=now), now=now)
    assert seconds(result.measured_us) == 48 * 3600
    assert seconds(result.eligible_us) == 48 * 3600
    assert seconds(result.down_us) == 1800
    assert result.budget_us == Fraction(3024 * 10**6)
    assert result.budget_used == Fraction(1800, 3024)


# --- properties --------------------------------------------------------------------------

HOURS = st.integers(min_value=0, max_value=167)


@st.composite
def outages(draw: st.DrawFn) -> list[tuple[float, float]]:
    spans = draw(st.lists(st.tuples(HOURS, st.integers(1, 300)), max_size=6))
    return [(h, min(168, h + minutes / 60)) for h, minutes in spans]


def _down_periods(spans: list[tuple[float, float]]) -> list[Period]:
    union = SpanSet.of((int(a * 3600e6), int(b * 3600e6)) for a, b in spans)
    periods = [Period(START, WEEK.end, UP)]
    for a, b in union.spans:
        periods.append(
            Period(START + timedelta(microseconds=a), START + timedelta(microseconds=b), DOWN)
        )
    return periods


@settings(max_examples=200, deadline=None)
@given(outages(), outages())
def test_more_downtime_never_raises_availability_or_lowers_credit(
    first: list[tuple[float, float]], more: list[tuple[float, float]]
) -> None:
    less = one(_down_periods(first))
    most = one(_down_periods(first + more))
    assert less.availability is not None
    assert most.availability is not None
    assert most.availability <= less.availability
    assert most.credit.total_pct >= less.credit.total_pct
    assert most.credit.amount >= less.credit.amount


@settings(max_examples=200, deadline=None)
@given(st.fractions(min_value=0, max_value=1), st.fractions(min_value=0, max_value=1))
def test_credit_never_falls_as_availability_falls_and_stays_within_cap(
    a: Fraction, b: Fraction
) -> None:
    terms = replace(
        GOLD,
        bands=(Band(Decimal("99"), Decimal("20")),),
        incident_rule=IncidentRule(1, timedelta(minutes=1), Decimal("7")),
    )
    high, low = max(a, b), min(a, b)
    credit_high = compute_credit(terms, high, [])
    credit_low = compute_credit(terms, low, [])
    assert credit_low.total_pct >= credit_high.total_pct
    for credit in (credit_high, credit_low):
        assert Decimal(0) <= credit.total_pct <= terms.cap_pct


@settings(max_examples=100, deadline=None)
@given(outages(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_the_order_periods_arrive_in(
    spans: list[tuple[float, float]], rng: object
) -> None:
    periods = _down_periods(spans)
    shuffled = list(periods)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert one(periods) == one(shuffled)


def test_error_budget_remaining_burn_rate_and_warnings() -> None:
    now = at(84)  # half the week
    result = one(timeline((10, 10.7), end=now), now=now)  # 2,520 s down of a 3,024 s budget
    assert seconds(result.budget_remaining_us) == 504
    assert result.budget_used == Fraction(2520, 3024)
    assert result.burn_rate == Fraction(2520, 3024) * 2  # twice the even pace
    assert result.warnings == (50, 80)  # warned before the breach, not after it
    assert one(timeline((10, 11)), now=AFTER).warnings == (50, 80, 100)
    assert one(timeline(), now=AFTER).warnings == ()


@pytest.mark.parametrize(
    ("measured", "met", "credit"),
    [
        pytest.param(Measurements(rtt_p95_ms=39.9, loss_mean_pct=0.05), True, "0", id="met"),
        pytest.param(Measurements(rtt_p95_ms=40.0, loss_mean_pct=0.1), True, "0", id="at-limit"),
        pytest.param(
            Measurements(rtt_p95_ms=40.01, loss_mean_pct=0.0), False, "5", id="latency-missed"
        ),
        pytest.param(Measurements(), None, "0", id="nothing-measured"),
    ],
)
def test_performance_objectives_are_reported_and_credited_when_missed(
    measured: Measurements, met: bool | None, credit: str
) -> None:
    terms = replace(
        GOLD,
        objectives=(
            Objective("latency p95", Decimal("40"), Decimal("5")),
            Objective("loss", Decimal("0.1")),
        ),
    )
    result = compute_window(WEEK, terms, [timeline()], [[]], AFTER, measured)
    latency, loss = result.objectives
    assert latency.met is met
    assert result.credit.objective_pct == Decimal(credit)
    assert result.credit.total_pct == Decimal(credit)
    assert loss.met is (None if measured.loss_mean_pct is None else True)


# --- coverage: when a person must look before a credit is paid ----------------------------

WEEK_S = 7 * 24 * 3600  # 2026-W47 has no DST change


def measured_for(known_s: int, status: LinkStatus = DOWN) -> list[Period]:
    """`status` for the first `known_s` seconds of the week; nothing measured after."""
    return [Period(START, START + timedelta(seconds=known_s), status)]


@dataclass(frozen=True)
class ReviewCase:
    name: str
    known_s: int  # measured seconds of the week, all down (the rest unknown)
    unknown: str
    min_coverage: Decimal | None
    floor: Decimal
    rule: str | None  # the review called for, None: none
    credit: str  # what is credited automatically
    withheld: str | None  # what the rules would have credited, when withheld


REVIEW_CASES = [
    # The week: 0.10 % measured, the rest unknown counted as down: the contract's
    # rules give the cap, and the window is flagged so a person looks before approving.
    ReviewCase("0.10 % coverage under count_as_down is flagged, not silently paid",
               605, "count_as_down", None, Decimal(90), "review_coverage_below", "125.00", None),
    ReviewCase("under min_coverage no credit is computed automatically",
               605, "count_as_down", Decimal(50), Decimal(90), "min_coverage", "0.00", "125.00"),
    ReviewCase("exactly at the floor is not flagged",
               WEEK_S * 9 // 10, "exclude", None, Decimal(90), None, "125.00", None),
    ReviewCase("a second under the floor is flagged",
               WEEK_S * 9 // 10 - 1, "exclude", None, Decimal(90), "review_coverage_below",
               "125.00", None),
    ReviewCase("exactly at min_coverage the credit stands (the floor still flags it)",
               WEEK_S // 2, "count_as_down", Decimal(50), Decimal(90),
               "review_coverage_below", "125.00", None),
    ReviewCase("a floor of 0 flags nothing",
               605, "count_as_down", None, Decimal(0), None, "125.00", None),
    ReviewCase("min_coverage applies with the floor off",
               605, "exclude", Decimal("0.5"), Decimal(0), "min_coverage", "0.00", "125.00"),
]  # fmt: skip


@pytest.mark.parametrize("case", REVIEW_CASES, ids=[c.name for c in REVIEW_CASES])
def test_low_coverage_is_flagged_and_min_coverage_withholds_the_credit(case: ReviewCase) -> None:
    terms = replace(
        GOLD,
        unknown=case.unknown,  # type: ignore[arg-type]
        min_coverage_pct=case.min_coverage,
        review_coverage_pct=case.floor,
    )
    result = one(measured_for(case.known_s), terms)
    review = result.review
    assert (None if review is None else review.rule) == case.rule
    assert f"{result.credit.amount:f}" == case.credit
    withheld = None if review is None or review.withheld is None else review.withheld.amount
    assert (None if withheld is None else f"{withheld:f}") == case.withheld


def test_a_window_with_nothing_measured_yet_has_no_coverage_to_judge() -> None:
    terms = replace(GOLD, review_coverage_pct=Decimal(90), min_coverage_pct=Decimal(50))
    assert one([], terms, now=START).review is None  # it has just begun
    late = one([], terms, now=START + timedelta(hours=1))
    assert late.review is not None
    assert late.review.rule == "min_coverage"
