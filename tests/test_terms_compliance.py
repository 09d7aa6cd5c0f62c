"""The compliance rate: the share of contract windows met, per customer, per plan and
overall, for the last 4/12/52 weeks and 3/12 months, with the trend.

First the pure computation at its boundaries (table-driven: a window exactly at a
period's edge, n/a and running windows, none at all, each trend, time zones and a DST
week), then where people meet it, through the real portal on the embedded database with
ledger rows: /noc/compliance, the billing desk, GET /api/v1/compliance as each role,
and the customer's home page line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from sla.compliance import (
    Compliance,
    ContractInfo,
    Scope,
    WindowCount,
    compliance,
    kind_of,
    summary,
)
from sla.windows import parse_window

BERLIN = "Europe/Berlin"
# Monday 2026-11-16 00:00 in Berlin: 2026-W46 ends this very instant.
W46_END = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
CONTRACTS = {
    "acme-gold": ContractInfo("acme", "gold", "week"),
    "acme-silver": ContractInfo("acme", None, "month"),
    "globex-gold": ContractInfo("globex", "gold", "week"),
}


def count(
    label: str,
    met: int = 1,
    counted: int = 1,
    *,
    contract: str = "acme-gold",
    customer: str = "acme",
    tz: str = BERLIN,
) -> WindowCount:
    window = parse_window(label, ZoneInfo(tz))
    return WindowCount(contract, customer, label, tz, window.end.astimezone(UTC), met, counted)


def weeks_back(first: str, n: int) -> list[str]:
    """`first` and the n - 1 weeks before it, newest first."""
    window = parse_window(first, ZoneInfo(BERLIN))
    out = [window.label]
    for _ in range(n - 1):
        window = window.previous()
        out.append(window.label)
    return out


def rate_of(result: Compliance, kind: str, n: int, scope: str = "overall") -> tuple[int, ...]:
    """(met, windows, previous met, previous windows) of a scope's rate."""
    found: Scope | None = result.overall if scope == "overall" else result.customer(scope)
    assert found is not None
    rate = found.rate(kind, n)
    assert rate is not None
    return rate.current.met, rate.current.windows, rate.previous.met, rate.previous.windows


@dataclass(frozen=True)
class Case:
    name: str
    counts: Sequence[WindowCount]
    now: datetime
    kind: str
    n: int
    expected: tuple[int, int, int, int]  # met, windows, previous met, previous windows


CASES = [
    Case(
        "a window ending exactly now is the period's newest",
        [count(label) for label in weeks_back("2026-W46", 8)],
        W46_END,
        "week",
        4,
        (4, 4, 4, 4),
    ),
    Case(
        "a second before its end it is still running: not counted",
        [count(label) for label in weeks_back("2026-W46", 8)],
        W46_END - SECOND,
        "week",
        4,
        (4, 4, 3, 3),  # W42..W45 now; W38..W41 before (W38 is the 8th back from W46)
    ),
    Case(
        "the window just before the period's start is in the previous period",
        [count("2026-W42", met=0)],
        W46_END,
        "week",
        4,
        (0, 0, 0, 1),
    ),
    Case(
        "the window starting exactly at the period's start is in it",
        [count("2026-W43", met=0)],
        W46_END,
        "week",
        4,
        (0, 1, 0, 0),
    ),
    Case(
        "the window before the previous period is in neither",
        [count("2026-W38")],
        W46_END,
        "week",
        4,
        (0, 0, 0, 0),
    ),
    Case(
        "n/a windows (no availability) are not counted",
        [count("2026-W46", met=0, counted=0), count("2026-W45")],
        W46_END,
        "week",
        4,
        (1, 1, 0, 0),
    ),
    Case(
        "a running window is not counted, met or not",
        [count("2026-W47"), count("2026-W46", met=0)],
        W46_END + timedelta(days=2),
        "week",
        4,
        (0, 1, 0, 0),
    ),
    Case(
        "each subject's row is a window: two links, one missed",
        [count("2026-W46", met=1, counted=2)],
        W46_END,
        "week",
        4,
        (1, 2, 0, 0),
    ),
    Case(
        "a week with a DST change (169 h) is one week",
        [count("2026-W43"), count("2026-W44", met=0)],
        datetime(2026, 11, 2, 0, 0, tzinfo=UTC) - timedelta(hours=1),  # Mon W45 00:00 CET
        "week",
        4,
        (1, 2, 0, 0),
    ),
    Case(
        "52 weeks and the 52 before them",
        [count(label) for label in weeks_back("2026-W46", 104)] + [count("2024-W46", met=0)],
        W46_END,
        "week",
        52,
        (52, 52, 52, 52),
    ),
    Case(
        "months: the last 3 ended months, and the 3 before",
        [count(m, contract="acme-silver") for m in ("2026-10", "2026-09", "2026-08")]
        + [count(m, met=0, contract="acme-silver") for m in ("2026-07", "2026-06", "2026-05")]
        + [count("2026-11", contract="acme-silver")],  # running
        W46_END,
        "month",
        3,
        (3, 3, 0, 3),
    ),
    Case(
        "a label that names no window kind is left out",
        [count("2026-W46"), WindowCount("acme-gold", "acme", "2026-X1", BERLIN, W46_END, 1, 1)],
        W46_END,
        "week",
        4,
        (1, 1, 0, 0),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_windows_each_period_counts(case: Case) -> None:
    result = compliance(case.counts, case.now, CONTRACTS)
    assert rate_of(result, case.kind, case.n) == case.expected


def test_each_window_counts_in_its_own_zone() -> None:
    # Sunday 2026-12-06 23:00 UTC: Tokyo is in 2026-W50 (W49 over), Berlin's W49 ends
    # this instant, New York's W49 still runs.
    now = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
    counts = [
        count("2026-W49", customer="tokyo", contract="t", tz="Asia/Tokyo"),
        count("2026-W49", customer="berlin", contract="b", tz=BERLIN),
        count("2026-W49", customer="ny", contract="n", tz="America/New_York"),
    ]
    result = compliance(counts, now, {})
    assert rate_of(result, "week", 4, "tokyo") == (1, 1, 0, 0)
    assert rate_of(result, "week", 4, "berlin") == (1, 1, 0, 0)
    assert rate_of(result, "week", 4, "ny") == (0, 0, 0, 0)
    assert rate_of(result, "week", 4) == (2, 2, 0, 0)


@dataclass(frozen=True)
class TrendCase:
    name: str
    current: tuple[int, int]  # met, windows of the last 4 weeks
    previous: tuple[int, int]
    trend: str | None
    change_pts: Decimal | None
    share_pct: Decimal | None


D = Decimal
TRENDS = [
    TrendCase("better than before: up", (4, 4), (3, 4), "up", D("25.00"), D("100.00")),
    TrendCase("worse than before: down", (1, 4), (2, 4), "down", D("-25.00"), D("25.00")),
    TrendCase("the same share: flat", (2, 4), (2, 4), "flat", D("0.00"), D("50.00")),
    # 2/3 - 3/4 = -8.333... points: truncated toward zero, never rounded away from it.
    TrendCase("a third: truncated", (2, 3), (3, 4), "down", D("-8.33"), D("66.66")),
    TrendCase("nothing before: no trend", (1, 1), (0, 0), None, None, D("100.00")),
    TrendCase("nothing now: no share", (0, 0), (1, 1), None, None, None),
]


@pytest.mark.parametrize("case", TRENDS, ids=[c.name for c in TRENDS])
def test_the_trend_against_the_previous_period(case: TrendCase) -> None:
    labels = weeks_back("2026-W46", 8)
    counts = []
    for labels_of, (met, windows) in ((labels[:4], case.current), (labels[4:], case.previous)):
        for i in range(windows):
            counts.append(count(labels_of[i], met=1 if i < met else 0))
    scope = compliance(counts, W46_END, CONTRACTS).overall
    rate = scope.rate("week", 4)
    assert rate is not None
    assert rate.trend == case.trend
    assert rate.change_pts() == case.change_pts
    assert rate.current.share_pct() == case.share_pct


def test_scopes_per_customer_per_plan_and_overall() -> None:
    counts = [
        count("2026-W46"),
        count("2026-W46", met=0, contract="globex-gold", customer="globex"),
        count("2026-10", contract="acme-silver"),
        count("2026-W46", met=0, contract="gone", customer="initech"),  # no longer configured
    ]
    result = compliance(counts, W46_END, CONTRACTS)
    assert [s.id for s in result.customers] == ["acme", "globex", "initech"]
    assert [s.name for s in result.plans] == ["gold", "no plan"]
    gold, no_plan = result.plans
    assert gold.rate("week", 4).current.windows == 2  # type: ignore[union-attr]
    assert gold.rate("month", 3) is None  # gold has only weekly contracts
    assert no_plan.rate("week", 4).current.windows == 1  # type: ignore[union-attr]
    assert no_plan.rate("month", 3).current.met == 1  # type: ignore[union-attr]
    assert rate_of(result, "week", 4) == (1, 3, 0, 0)
    assert result.kinds == ("week", "month")


def test_no_windows_yet() -> None:
    # Configured contracts without a row: their scopes exist and say so.
    result = compliance([], W46_END, CONTRACTS)
    acme = result.customer("acme")
    assert acme is not None
    assert [(r.kind, r.count, r.current.windows) for r in acme.rates] == [
        ("week", 4, 0), ("week", 12, 0), ("week", 52, 0), ("month", 3, 0), ("month", 12, 0),
    ]  # fmt: skip
    assert all(r.current.share is None and r.trend is None for r in acme.rates)
    assert summary(acme) == ["no weeks ended yet", "no months ended yet"]
    assert summary(Scope("customer", "new", ())) == ["no windows yet"]


def test_the_home_page_line_counts_every_window_row() -> None:
    # Two links over the last 52 weeks: 104 weeks, 5 of them missed.
    counts = [count(label, met=2, counted=2) for label in weeks_back("2026-W46", 52)]
    counts[0] = count("2026-W46", met=0, counted=2)
    counts[1] = count("2026-W45", met=0, counted=2)
    counts[2] = count("2026-W44", met=1, counted=2)
    acme = compliance(counts, W46_END, {"acme-gold": CONTRACTS["acme-gold"]}).customer("acme")
    assert acme is not None
    assert summary(acme) == ["99 of 104 weeks met in the last 52 weeks"]


@pytest.mark.parametrize(
    ("label", "kind"),
    [("2026-W47", "week"), ("2026-11", "month"), ("2026-Q3", "quarter"), ("2026", "year"),
     ("2026-13x", None), ("W47", None)],
)  # fmt: skip
def test_kind_of_a_label(label: str, kind: str | None) -> None:
    assert kind_of(label) == kind
