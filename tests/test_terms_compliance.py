"""The compliance rate: the share of contract windows met, per customer, per plan and
overall, for the last 4/12/52 weeks and 3/12 months, with the trend.

First the pure computation at its boundaries (table-driven: a window exactly at a
period's edge, n/a and running windows, none at all, each trend, time zones and a DST
week), then where people meet it, through the real portal on the embedded database with
ledger rows: /noc/compliance, the billing desk, GET /api/v1/compliance as each role,
and the customer's home page line.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from collector import Database
from kernel.domain import Outcome, Sample
from portal.keys import ACCOUNTS
from sla.compliance import (
    Compliance,
    ContractInfo,
    Scope,
    WindowCount,
    compliance,
    summary,
)
from sla.ledger import refresh_ledger
from sla.windows import label_kind as kind_of
from sla.windows import parse_window
from tests.helpers import element_by_id, table_row, text_of
from tests.portal_kit import (
    CONFIG_TEXT,
    NOW,
    PortalKit,
    minutes,
    portal_config,
    running_portal,
    samples,
)

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
        "quarters: the last 4 ended quarters, and the 4 before",
        [count(q, contract="acme-q") for q in ("2026-Q3", "2026-Q2", "2026-Q1", "2025-Q4")]
        + [count(q, met=0, contract="acme-q") for q in ("2025-Q3", "2025-Q2")]
        + [count("2026-Q4", contract="acme-q")],  # running
        W46_END,
        "quarter",
        4,
        (4, 4, 0, 2),
    ),
    Case(
        "a year ending exactly now is counted; the year before is the previous period",
        [count("2025", contract="acme-y"), count("2024", met=0, contract="acme-y")],
        datetime(2025, 12, 31, 23, 0, tzinfo=UTC),  # 2026-01-01 00:00 in Berlin
        "year",
        1,
        (1, 1, 0, 1),
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


# --- through the portal, on the embedded database ------------------------------------

# Probes every 10 minutes; acme-fra-gold on the plan "gold", the other contracts on none.
CONFIG = portal_config(
    CONFIG_TEXT.replace("interval: 60s", "interval: 10m")
    .replace("interval: 5m", "interval: 10m")
    .replace("contracts:\n", "plans:\n  - {id: gold}\ncontracts:\n", 1)
    .replace(
        "{id: acme-fra-gold, customer: acme,", "{id: acme-fra-gold, customer: acme, plan: gold,"
    )
)
STEP = timedelta(minutes=10)
ACME_FROM = datetime(2026, 10, 4, 22, 0, tzinfo=UTC)  # 2026-W41 begins in Berlin
GLOBEX_FROM = datetime(2026, 10, 19, 4, 0, tzinfo=UTC)  # 2026-W43 begins in New York
ACME_OUTAGE = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)  # two hours in 2026-W45
GLOBEX_OUTAGE = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)  # two hours in 2026-W46
LABELS = [f"2026-W{week}" for week in range(41, 48)] + ["2026-10", "2026-11"]


def _up_but(link_id: str, start: datetime, outage: datetime, now: datetime) -> list[Sample]:
    back = outage + timedelta(hours=2)
    out = samples(link_id, minutes(start, outage, STEP), rtt_ms=4.0, loss_pct=0.0)
    out += samples(link_id, minutes(outage, back, STEP), Outcome.DOWN, loss_pct=100.0)
    return out + samples(link_id, minutes(back, now, STEP), rtt_ms=4.0, loss_pct=0.0)


def history(now: datetime) -> list[Sample]:
    """acme-fra-1 (Berlin, weekly, 99.5 %) from W41: W45 missed, the others met;
    globex-nyc-1 (New York, weekly, 99.9 %) from W43: W46 missed. The monthly contracts'
    links were never measured."""
    return _up_but("acme-fra-1", ACME_FROM, ACME_OUTAGE, now) + _up_but(
        "globex-nyc-1", GLOBEX_FROM, GLOBEX_OUTAGE, now
    )


@pytest.fixture
async def kit(database: Database) -> AsyncIterator[PortalKit]:
    async with running_portal(database, CONFIG, history=history) as kit:
        await refresh_ledger(kit.db, kit.config, LABELS, NOW - timedelta(minutes=5))
        yield kit


async def _api(kit: PortalKit, name: str, query: str = "") -> tuple[int, dict[str, object]]:
    accounts = kit.client.app[ACCOUNTS]
    user = await accounts.user(name)
    assert user is not None
    _, token = await accounts.create_token(user, "compliance", kit.clock())
    response = await kit.client.get(
        f"/api/v1/compliance{query}", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status, await response.json()


def _rate(item: dict[str, object], window: str, count: int) -> dict[str, object]:
    rates = item["rates"]
    assert isinstance(rates, list)
    (found,) = [r for r in rates if r["window"] == window and r["count"] == count]
    return dict(found)


async def test_operations_see_every_scope_with_its_trend(kit: PortalKit) -> None:
    await kit.sign_in("olga")
    assert 'href="/noc/compliance"' in await kit.page("/noc")  # the NOC's own link
    html = await kit.page("/noc/compliance")
    overall = text_of(
        table_row(element_by_id(html, "table", "compliance-overall"), "all contracts")
    )
    # Last 4 weeks: acme W43-W46 (W45 missed), globex W43-W46 (W46 missed) = 6 of 8; the
    # 4 weeks before: acme W41-W42, both met. W47 runs, so it is not counted.
    assert "6 / 8 (75 %) ↓ −25 pts" in overall
    plans = element_by_id(html, "table", "compliance-per-plan")
    assert "3 / 4 (75 %) ↓ −25 pts" in text_of(table_row(plans, "gold"))
    assert "3 / 4 (75 %)" in text_of(table_row(plans, "no plan"))
    customers = element_by_id(html, "table", "compliance-per-customer")
    acme = text_of(table_row(customers, "Acme Corp"))
    assert acme.startswith("Acme Corp 3 / 4 (75 %) ↓ −25 pts 5 / 6 (83.33 %)")
    # Monthly contracts whose links were never measured: their month runs (n/a).
    assert acme.endswith("no windows yet no windows yet")
    assert "3 / 4 (75 %)" in text_of(table_row(customers, "Globex Inc"))


async def test_billing_reads_the_rate_per_customer_on_its_desk(kit: PortalKit) -> None:
    await kit.sign_in("bill")
    desk = await kit.page("/billing")
    customers = element_by_id(desk, "table", "compliance-customers")
    assert "3 / 4 (75 %) ↓ −25 pts" in text_of(table_row(customers, "Acme Corp"))
    assert 'href="/noc/compliance"' in desk
    html = await kit.page("/noc/compliance")  # billing reaches the whole summary too
    assert "6 / 8 (75 %)" in text_of(element_by_id(html, "table", "compliance-overall"))
    assert 'href="/billing"' in html  # back to its desk, not to the NOC it cannot see


async def test_the_api_as_each_role(kit: PortalKit) -> None:
    status, body = await _api(kit, "olga")
    assert status == 200
    items = body["items"]
    assert isinstance(items, list)
    assert [(i["scope"], i["id"]) for i in items] == [
        ("overall", None), ("plan", "gold"), ("plan", None),
        ("customer", "acme"), ("customer", "globex"),
    ]  # fmt: skip
    assert _rate(items[0], "week", 4) == {
        "window": "week", "count": 4, "label": "last 4 weeks", "met": 6, "windows": 8,
        "share_pct": "75.00", "previous_met": 2, "previous_windows": 2,
        "previous_share_pct": "100.00", "change_pts": "-25.00", "trend": "down",
    }  # fmt: skip
    assert _rate(items[0], "month", 3)["share_pct"] is None  # no windows yet

    for name in ("olga", "bill", "ada"):
        status, body = await _api(kit, name, "?plan=gold")
        assert status == 200
        (gold,) = body["items"]
        assert (gold["scope"], gold["id"], _rate(gold, "week", 52)["windows"]) == (
            "plan",
            "gold",
            6,
        )
    status, body = await _api(kit, "bill", "?customer=globex")
    (globex,) = body["items"]
    assert (globex["name"], _rate(globex, "week", 4)["met"]) == ("Globex Inc", 3)
    status, body = await _api(kit, "bill", "?customer=globex&plan=gold")
    assert body["items"] == [
        {"scope": "customer", "id": "globex", "name": "Globex Inc", "rates": []}
    ]
    assert (await _api(kit, "bill", "?plan=platinum"))[0] == 404  # no such plan

    # A customer: their own scope only, never the overall or a plan's (other customers').
    status, body = await _api(kit, "alice")
    assert status == 200
    (own,) = body["items"]
    assert (own["scope"], own["id"], _rate(own, "week", 52)["met"]) == ("customer", "acme", 5)
    assert "globex" not in json_text(body)
    assert (await _api(kit, "alice", "?customer=acme"))[1]["items"] == body["items"]
    for query in ("?customer=globex", "?plan=gold", "?plan=none"):
        assert (await _api(kit, "alice", query))[0] == 404, query
    status, body = await _api(kit, "gus")
    (theirs,) = body["items"]
    assert (theirs["id"], _rate(theirs, "week", 4)["met"]) == ("globex", 3)
    assert "acme" not in json_text(body)


async def test_the_customers_home_page_says_how_many_windows_were_met(kit: PortalKit) -> None:
    await kit.sign_in("alice")
    home = await kit.client.get("/")
    assert home.url.path == "/links"
    html = await home.text()
    line = text_of(element_by_id(html, "p", "compliance-summary"))
    assert line == ("Your contracts: 5 of 6 weeks met in the last 52 weeks · no months ended yet.")
    assert "globex" not in html.lower()
    await kit.sign_out()
    await kit.sign_in("gus")
    line = text_of(element_by_id(await kit.page("/links"), "p", "compliance-summary"))
    assert line.startswith("Your contracts: 3 of 4 weeks met in the last 52 weeks")
    await kit.sign_out()
    await kit.sign_in("olga")
    assert 'id="compliance-summary"' not in await kit.page("/links")  # staff: on the NOC


def json_text(body: object) -> str:
    return json.dumps(body).lower()
