"""Time to restore: each outage that ends in a window is timed from its confirmed start,
and every started unit beyond the contract's limit earns its credit (docs/design.md)."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector import Database
from kernel.config import parse_config
from kernel.domain import LinkStatus, MaintenanceWindow, Outcome, Sample
from sla.compute import Period, WindowResult, WindowTerms, compute_window
from sla.restore import RestoreRule, units_over
from sla.windows import parse_window
from tests.helpers import linkwatch, text_of, words
from tests.portal_kit import CONFIG_TEXT, NOW, minutes, portal_config, running_portal, samples

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = parse_window("2026-W47", BERLIN)  # Mon 2026-11-16 00:00 CET .. Mon 2026-11-23
NEXT = parse_window("2026-W48", BERLIN)
START, END = WEEK.start, WEEK.end
AFTER = NEXT.end + timedelta(days=1)
US = timedelta(microseconds=1)
H = timedelta(hours=1)
RULE = RestoreRule(
    within=4 * H, credit_per=H, credit_pct=Decimal(5), cap_pct=Decimal(25), warn_at_pct=Decimal(90)
)
# No availability credit of its own (target 0.0001 %), so the credit is the restore term's.
TERMS = WindowTerms(
    target_pct=Decimal("0.0001"), fee=Decimal("200.00"), cap_pct=Decimal(50), restore=RULE
)
UP, DOWN = LinkStatus.UP, LinkStatus.DOWN


def outages(*spans: tuple[timedelta, timedelta]) -> list[Period]:
    """UP from a day before the window to a day after the next one, except the DOWN spans
    (offsets from the window's start)."""
    periods, cursor = [], START - timedelta(days=1)
    for begin, finish in sorted(spans):
        periods.append(Period(cursor, START + begin, UP))
        periods.append(Period(START + begin, START + finish, DOWN))
        cursor = START + finish
    periods.append(Period(cursor, NEXT.end + timedelta(days=1), UP))
    return periods


def planned(begin: timedelta, finish: timedelta) -> MaintenanceWindow:
    return MaintenanceWindow(
        "mw", START + begin, START + finish, START + begin - timedelta(days=7), link_ids=("l",)
    )


@dataclass(frozen=True)
class Case:
    name: str
    periods: list[Period]
    units: list[int]  # per outage billed in the window
    restore_pct: str  # the window's, after the restore cap
    continuing: int = 0  # outages still running at the window's end
    maintenance: tuple[MaintenanceWindow, ...] = ()
    terms: WindowTerms = TERMS


DAY = timedelta(days=1)
CASES = [
    Case("no outage: nothing", outages(), [], "0"),
    Case("exactly at the limit: 0 units", outages((DAY, DAY + 4 * H)), [0], "0"),
    Case("one microsecond over: 1 unit", outages((DAY, DAY + 4 * H + US)), [1], "5"),
    Case("exactly one unit over: 1 unit", outages((DAY, DAY + 5 * H)), [1], "5"),
    Case("one unit and a microsecond over: 2", outages((DAY, DAY + 5 * H + US)), [2], "10"),
    Case(
        "the design's example, 5 h 12 min against 4 h: 2 units",
        outages((DAY, DAY + 5 * H + timedelta(minutes=12))),
        [2],
        "10",
    ),
    Case(
        "each outage on its own, summed",
        outages((DAY, DAY + 5 * H), (2 * DAY, 2 * DAY + 6 * H)),
        [1, 2],
        "15",
    ),
    Case(
        "the restore cap reached: 30 % + 30 % is 25 %",
        outages((DAY, DAY + 10 * H), (2 * DAY, 2 * DAY + 10 * H)),
        [6, 6],
        "25",
    ),
    Case(
        "an outage beginning before the window counts from its confirmed start",
        outages((-3 * H, 2 * H)),
        [1],
        "5",
    ),
    Case(
        "an outage that ended exactly at the window's start: not this window's",
        outages((-6 * H, timedelta(0))),
        [],
        "0",
    ),
    Case(
        "an outage ending exactly at the window's end: this window's",
        outages((7 * DAY - 6 * H, 7 * DAY)),
        [2],
        "10",
    ),
    Case(
        "an outage running past the window's end: billed where it ends",
        outages((7 * DAY - 6 * H, 7 * DAY + 3 * H)),
        [],
        "0",
        continuing=1,
    ),
    Case(
        "qualifying maintenance inside the outage stops the clock: 6 h - 2 h is at the limit",
        outages((DAY, DAY + 6 * H)),
        [0],
        "0",
        maintenance=(planned(DAY + H, DAY + 3 * H),),
    ),
    Case(
        "maintenance announced too late does not stop the clock",
        outages((DAY, DAY + 6 * H)),
        [2],
        "10",
        maintenance=(replace(planned(DAY + H, DAY + 3 * H), announced_at=START + DAY),),
    ),
    Case(
        "no restore term: nothing, as before",
        outages((DAY, DAY + 10 * H)),
        [],
        "0",
        terms=replace(TERMS, restore=None),
    ),
]


def week(case: Case, window=WEEK) -> WindowResult:  # type: ignore[no-untyped-def]
    return compute_window(window, case.terms, [case.periods], [list(case.maintenance)], AFTER)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_restore_boundaries(case: Case) -> None:
    result = week(case)
    assert [r.units for r in result.restores] == case.units
    assert result.credit.restore_pct == Decimal(case.restore_pct)
    assert len(result.continuing) == case.continuing
    # Added to the credit like any other term, before the overall cap.
    assert result.credit.total_pct == Decimal(case.restore_pct)
    assert result.credit.amount == TERMS.fee * Decimal(case.restore_pct) / 100


def test_the_outage_running_past_the_end_is_billed_in_the_next_window_whole() -> None:
    periods = outages((7 * DAY - 6 * H, 7 * DAY + 3 * H))
    result = compute_window(NEXT, TERMS, [periods], [[]], AFTER)
    (billed,) = result.restores
    assert (billed.start, billed.end) == (END - 6 * H, END + 3 * H)
    assert billed.counted_us == 9 * H // US
    assert (billed.units, billed.pct) == (5, Decimal(25))


def test_before_and_after_the_window_only_the_restore_clock_sees_the_outage() -> None:
    """The window's own figures are those of the same periods clipped to it."""
    periods = outages((-3 * H, 2 * H), (7 * DAY - H, 7 * DAY + H))
    clipped = [
        Period(max(p.start, START), min(p.end, END), p.status)
        for p in periods
        if p.end > START and p.start < END
    ]
    plain = replace(TERMS, restore=None)
    whole = compute_window(WEEK, TERMS, [periods], [[]], AFTER)
    before = compute_window(WEEK, plain, [clipped], [[]], AFTER)
    assert (whole.down_us, whole.availability, whole.outages, whole.budget_used) == (
        before.down_us,
        before.availability,
        before.outages,
        before.budget_used,
    )
    assert whole.restores[0].counted_us == 5 * H // US


def test_the_restore_credit_is_added_before_the_overall_cap() -> None:
    steps = replace(TERMS, target_pct=Decimal("99.9"), per_step_pct=Decimal(1))
    down = outages((DAY, DAY + 10 * H))  # 94.04 %: 12 steps of 0.5 below 99.9 %
    uncapped = week(Case("", down, [], "", terms=steps))
    assert (uncapped.credit.steps_pct, uncapped.credit.restore_pct) == (12, 25)
    assert uncapped.credit.total_pct == Decimal(37)
    capped = week(Case("", down, [], "", terms=replace(steps, cap_pct=Decimal(30))))
    assert capped.credit.total_pct == Decimal(30)
    assert capped.credit.amount == Decimal("60.00")


def test_a_redundant_group_is_timed_while_every_member_is_down() -> None:
    a = outages((DAY, DAY + 8 * H))
    b = outages((DAY + 2 * H, DAY + 10 * H))
    result = compute_window(WEEK, TERMS, [a, b], [[], []], AFTER)
    assert [(r.start, r.end, r.units) for r in result.restores] == [
        (START + DAY + 2 * H, START + DAY + 8 * H, 2)
    ]


def test_a_running_window_lists_the_current_outage_as_continuing() -> None:
    now = START + DAY + 5 * H
    periods = outages((DAY, 3 * DAY))
    result = compute_window(WEEK, TERMS, [periods], [[]], now)
    assert result.restores == ()
    (running,) = result.continuing
    assert (running.start, running.counted_us) == (START + DAY, 5 * H // US)


@pytest.mark.parametrize(
    ("counted", "units"),
    [(timedelta(0), 0), (4 * H, 0), (4 * H + US, 1), (5 * H, 1), (5 * H + US, 2), (9 * H, 5)],
)
def test_units_are_started_units_beyond_the_limit(counted: timedelta, units: int) -> None:
    assert units_over(counted // US, RULE) == units


# --- config: every mistake named with its path, value and what is allowed ----------------

FULL = {"within": "4h", "credit_per": "1h", "credit_pct": 5, "cap_pct": 25, "warn_at_pct": 90}


@pytest.mark.parametrize(
    ("restore", "expected"),
    [
        pytest.param(
            {"within": "4h"},
            "contracts[0].restore.credit_pct: required key 'credit_pct' is missing",
            id="no-credit-pct",
        ),
        pytest.param(
            {**FULL, "within": 4},
            "contracts[0].restore.within: 4 has no unit; write it as e.g. 4s",
            id="within-without-unit",
        ),
        pytest.param(
            {**FULL, "credit_per": "0s"},
            "contracts[0].restore.credit_per: 0s is not positive; use a duration above 0s",
            id="credit-per-zero",
        ),
        pytest.param(
            {**FULL, "credit_pct": 0},
            "contracts[0].restore.credit_pct: 0: input should be greater than 0",
            id="credit-pct-zero",
        ),
        pytest.param(
            {**FULL, "cap_pct": 101},
            "contracts[0].restore.cap_pct: 101: input should be less than or equal to 100",
            id="cap-over-100",
        ),
        pytest.param(
            {**FULL, "warn_at_pct": 100},
            "contracts[0].restore: warn_at_pct 100 warns no earlier than the deadline itself "
            "(restore-overdue); use a share above 0 and under 100",
            id="warn-at-the-deadline",
        ),
        pytest.param(
            {**FULL, "cap_pct": 4},
            "contracts[0].restore: cap_pct 4 is under credit_pct 5, so not even one unit could "
            "be credited; use a cap_pct of at least credit_pct",
            id="cap-under-one-unit",
        ),
        pytest.param(
            {**FULL, "per": "1h"},
            "contracts[0].restore.per: unknown key 'per'; allowed keys here: within, "
            "credit_per, credit_pct, cap_pct, warn_at_pct",
            id="unknown-key",
        ),
    ],
)
def test_restore_config_mistakes_are_named(restore: dict[str, object], expected: str) -> None:
    from tests.test_config import edit, problems

    assert problems(edit("contracts.0.restore", restore)) == [expected]


def test_restore_resolves_through_plan_contract_and_version() -> None:
    import yaml

    from kernel.config import parse_config
    from tests.test_config import edit

    data = edit("contracts.0.plan", "gold-plan")
    data["plans"] = [{"id": "gold-plan", "target": 99.5, "restore": FULL}]
    data["contracts"][0]["versions"] = [
        {
            "effective_from": "2026-12-01T00:00:00+01:00",
            "restore": {"within": "2h", "credit_pct": 10},
        },
        {"effective_from": "2027-01-01T00:00:00+01:00", "restore": None},
    ]
    config = parse_config(yaml.safe_dump(data), environ={})
    contract, plans = config.contracts[0], config.plans
    first = contract.terms_at(START, plans)
    assert first is not None
    assert first.restore is not None
    assert (first.restore.within, first.restore.cap_pct, first.restore.warn_at_pct) == (
        4 * H,
        25,
        90,
    )
    later = contract.terms_at(START + timedelta(days=20), plans)
    assert later is not None
    assert later.restore is not None
    # A version changes only what it sets.
    assert (later.restore.within, later.restore.credit_pct, later.restore.cap_pct) == (
        2 * H,
        10,
        25,
    )
    gone = contract.terms_at(START + timedelta(days=50), plans)
    assert gone is not None
    assert gone.restore is None
    plain = edit("contracts.0.target", 99.5)
    terms = parse_config(yaml.safe_dump(plain), environ={}).contracts[0].terms_at(START, [])
    assert terms is not None
    assert terms.restore is None


# --- `linkwatch report sla` on the embedded database ----------------------------------------

W47 = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)  # Mon 2026-11-16 00:00 Berlin
W47_END = W47 + timedelta(days=7)
# Three outages of acme-hq, one sample a minute: from 3 h before the week to 2 h into it
# (5 h: 1 started hour over 4 h), 5 h 12 min on Wednesday (2 hours over), and one from an
# hour before the week's end to 2 h after it (billed in 2026-W48).
SAMPLED_OUTAGES = (
    (W47 - 3 * H, W47 + 2 * H),
    (W47 + 2 * DAY + 9 * H, W47 + 2 * DAY + 14 * H + timedelta(minutes=12)),
    (W47_END - H, W47_END + 2 * H),
)


@pytest.fixture(scope="module")
def restore_config(pg_base_dir: Path) -> Path:
    directory = Path(tempfile.mkdtemp(dir=pg_base_dir))
    directory.chmod(0o711)
    config = directory / "linkwatch.yaml"
    config.write_text(
        f"""\
data_dir: {directory}
customers:
  - {{id: acme, name: ACME Corp, timezone: Europe/Berlin}}
links:
  - {{id: acme-hq, customer: acme, probes: [{{id: icmp, kind: icmp, host: 127.0.0.1,
      interval: 1m}}]}}
contracts:
  - {{id: acme-gold, customer: acme, links: [acme-hq], target: 90, window: week,
      fee: "200.00", credit: {{per_step: 5}},
      restore: {{within: 4h, credit_per: 1h, credit_pct: 5, cap_pct: 25, warn_at_pct: 90}}}}
"""
    )
    csv_path = directory / "samples.csv"
    with csv_path.open("w") as handle:
        handle.write("time,link,probe,outcome,rtt_ms,loss_pct\n")
        moment = W47 - DAY
        while moment < W47_END + DAY:
            down = any(begin <= moment < end for begin, end in SAMPLED_OUTAGES)
            outcome, rtt, loss = ("down", "", "100") if down else ("up", "4.2", "0")
            handle.write(f"{moment.isoformat()},acme-hq,icmp,{outcome},{rtt},{loss}\n")
            moment += timedelta(minutes=1)
    result = linkwatch("import", "samples", "--config", str(config), str(csv_path))
    assert result.returncode == 0, result.stderr
    return config


def test_report_sla_prints_each_outage_restored_late(restore_config: Path) -> None:
    args = ("report", "sla", "--config", str(restore_config), "--window")
    result = linkwatch(*args, "2026-W47", "--format", "json")
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)
    # Only the parts inside the week count against availability (2 h + 5 h 12 min + 1 h:
    # 95.1 %, target met), but the first outage is timed from its start before the week.
    down_s = (120 + 312 + 60) * 60
    assert (record["down_s"], record["met"], record["credit_steps"]) == (down_s, True, 0)
    assert (record["restore_pct"], record["restores_over"], record["restores_continuing"]) == (
        "15",
        2,
        1,
    )
    assert (record["credit_pct"], record["credit_amount"]) == ("15", "30.00")

    table = linkwatch(*args, "2026-W47")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[-3:] == [
        "restore acme-gold acme-hq 2026-W47: outage from 2026-11-15 21:00 CET restored after "
        "5 h: 1 started hour over 4 h, 5 %",
        "restore acme-gold acme-hq 2026-W47: outage from 2026-11-18 09:00 CET restored after "
        "5 h 12 min: 2 started hours over 4 h, 10 %",
        "restore acme-gold acme-hq 2026-W47: outage from 2026-11-22 23:00 CET still running at "
        "the window's end (1 h so far): billed in the window it ends in",
    ]

    # The outage running over the week's end is billed, whole, in the week it ends in.
    after = linkwatch(*args, "2026-W48", "--format", "json")
    assert after.returncode == 0, after.stderr
    (next_week,) = json.loads(after.stdout)
    assert (next_week["restore_pct"], next_week["restores_over"]) == ("0", 0)  # 3 h: in time


def test_the_monthly_report_shows_the_term_and_each_outage_restored_late(
    restore_config: Path,
) -> None:
    result = linkwatch(
        "report", "monthly", "--config", str(restore_config), "--customer", "acme",
        "--month", "2026-11",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    page = words(result.stdout)
    assert (
        "Time to restore each outage restored within 4 h; every started hour beyond it earns "
        "5 % of the fee, at most 25 % per window, before the overall cap"
    ) in page
    assert (
        "Restored late 10 % outage from 2026-11-18 09:00 CET restored after 5 h 12 min: "
        "2 started hours over 4 h, 10 %"
    ) in page
    assert "Still running 0 % outage from 2026-11-22 23:00 CET still running" in page
    assert "Restore credit 15 % the lesser of the restore cap 25 % and 5 % + 10 %" in page


# --- the NOC's outage card: a countdown to the restore deadline ------------------------------

NOC_CONFIG = CONFIG_TEXT.replace(
    'fee: "250.00", currency: EUR, credit: {step: 0.5, per_step: 5, cap: 50}}',
    'fee: "250.00", currency: EUR, credit: {step: 0.5, per_step: 5, cap: 50},\n'
    "     restore: {within: 1h, credit_per: 30m, credit_pct: 5, warn_at_pct: 50}}",
).replace("interval: 60s", "interval: 10m")
NOC_STEP = timedelta(minutes=10)
NOC_WEEK = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)
NOC_OUTAGE = NOW - timedelta(minutes=20)


def fra_down_for_20_min(now: datetime = NOW) -> list[Sample]:
    up = samples("acme-fra-1", minutes(NOC_WEEK, NOC_OUTAGE, NOC_STEP), rtt_ms=4.0, loss_pct=0.0)
    down = samples("acme-fra-1", minutes(NOC_OUTAGE, now, NOC_STEP), Outcome.DOWN, loss_pct=100.0)
    return up + down


def restore_item(html: str) -> str:
    (item,) = re.findall(r'<li class="countdown restore level-[a-z]+">.*?</li>', html, re.S)
    return item


async def test_the_outage_card_counts_down_to_the_restore_deadline(database: Database) -> None:
    assert "restore:" in NOC_CONFIG
    async with running_portal(
        database, portal_config(NOC_CONFIG), history=fra_down_for_20_min
    ) as kit:
        await kit.sign_in("olga")
        # 20 min of 1 h: before the warning share (50 %), green.
        item = restore_item(await kit.page("/noc"))
        assert 'class="countdown restore level-ok"' in item
        assert "acme-fra-gold restore by 12:40 — 40 min left" in text_of(item)
        assert "2026-W47 · restore within 1 h · warned at 50 % · deadline 2026-11-18 12:40 UTC" in (
            text_of(item)
        )

        async def go_on(delta: timedelta) -> str:
            start = kit.clock.now
            kit.clock.advance(delta)
            await kit.store(
                samples("acme-fra-1", minutes(start, kit.clock.now, NOC_STEP), Outcome.DOWN)
            )
            return await kit.page("/partial/noc")

        item = restore_item(await go_on(timedelta(minutes=10)))  # 30 min: the warning share
        assert 'class="countdown restore level-warning"' in item
        assert "restore by 12:40 — 30 min left" in text_of(item)

        page = await go_on(timedelta(minutes=42))  # 1 h 12 min: 12 min past the deadline
        item = restore_item(page)
        assert 'class="countdown restore level-critical"' in item
        assert "acme-fra-gold overdue by 12 min" in text_of(item)
        assert '<li class="outage level-critical">' in page


# --- notifications: warned at a share of the limit, and at the deadline, to operations -------

NOTIFY_CONTRACT = """
contracts:
  - id: acme-fibre
    customer: acme
    links: [acme-hq]
    target: 90
    window: week
    fee: 1000
    restore: {within: 5m, credit_per: 1m, credit_pct: 1, warn_at_pct: 90}
"""


async def test_restore_warning_then_overdue_reach_operations_once_each(
    database: Database,
) -> None:
    """The seeds' rule: notify at 4 min 30 s of 5 min, then at the deadline."""
    from notify import Dispatcher, Evaluator
    from tests.notify_kit import notifications_yaml, webhook_receiver
    from tests.test_notify import BASE, drain
    from tests.test_notify_evaluator import load

    down_from = NOW - timedelta(minutes=4, seconds=30)
    clock = [NOW]

    def history(until: datetime, start: datetime = NOW - DAY) -> list[Sample]:
        out, at = [], start
        while at < until:
            outcome = Outcome.DOWN if at >= down_from else Outcome.UP
            out.append(Sample("acme-hq", "ping", at, outcome))
            at += timedelta(seconds=30)
        return out

    async with webhook_receiver() as receiver:
        cfg = parse_config(BASE + NOTIFY_CONTRACT + notifications_yaml(receiver.url))
        await load(database, cfg, history(NOW))
        evaluator = Evaluator(database, cfg, clock=lambda: clock[0])
        dispatcher = Dispatcher(database, cfg, clock=lambda: clock[0])
        assert await evaluator.evaluate_once() >= 1  # 4 min 30 s of 5 min: the warning
        await drain(dispatcher)
        clock[0] = NOW + timedelta(seconds=30)  # 5 min: the deadline
        await load(database, cfg, history(clock[0], start=NOW))
        await evaluator.evaluate_once()
        clock[0] = NOW + timedelta(seconds=60)
        await load(database, cfg, history(clock[0], start=clock[0] - timedelta(seconds=30)))
        await evaluator.evaluate_once()  # still overdue: nothing new to tell
        await drain(dispatcher)

    told = [d for d in receiver.accepted if d.body["kind"].startswith("restore-")]
    start = down_from.isoformat()
    assert [(d.path, d.event_id) for d in told] == [
        ("/ops", f"restore-warning:acme-fibre:acme-hq:{start}"),
        ("/ops", f"restore-overdue:acme-fibre:acme-hq:{start}"),
    ]  # never to the customer's own route
    warning, overdue = (d.body for d in told)
    assert warning["occurred_at"] == NOW.isoformat()
    assert (
        warning["subject"]
        == "[Linkwatch] Restore deadline near: Acme HQ fibre (acme-hq), acme-fibre"
    )
    assert warning["summary"] == (
        "Acme HQ fibre (acme-hq) is down since 2026-11-18 12:55 CET: 90\u00a0% of the 5\u00a0min "
        "contract acme-fibre allows to restore it are used. Restore it by 2026-11-18 13:00 "
        "CET; after that each started 1\u00a0min beyond it earns 1\u00a0% of the fee, at most "
        "100\u00a0% in the window."
    )
    assert overdue["subject"] == "[Linkwatch] RESTORE OVERDUE: Acme HQ fibre (acme-hq), acme-fibre"
    assert overdue["occurred_at"] == (NOW + timedelta(seconds=30)).isoformat()
    assert overdue["data"]["counted_s"] == "300"


async def test_the_api_sla_records_carry_the_restore_fields(database: Database) -> None:
    from tests.test_api import make_token

    late = (NOC_WEEK + DAY, NOC_WEEK + DAY + 5 * H)  # 5 h against 1 h: 8 half hours over

    def history(now: datetime) -> list[Sample]:
        return [
            Sample(
                "acme-fra-1",
                "icmp",
                at,
                Outcome.DOWN if late[0] <= at < late[1] or at >= NOC_OUTAGE else Outcome.UP,
            )
            for at in minutes(NOC_WEEK, now, NOC_STEP)
        ]

    async with running_portal(database, portal_config(NOC_CONFIG), history=history) as kit:
        token = await make_token(kit, "olga")
        response = await kit.client.get(
            "/api/v1/reports/sla",
            params={"window": "2026-W47"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 200, await response.text()
        body = await response.json()
    (record,) = [r for r in body["items"] if r["contract"] == "acme-fra-gold"]
    assert (record["restore_pct"], record["restores_over"], record["restores_continuing"]) == (
        "40",
        1,
        1,  # down now: billed when it ends
    )
    others = [r for r in body["items"] if r["contract"] != "acme-fra-gold"]
    assert others
    assert {(r["restore_pct"], r["restores_over"]) for r in others} == {("0", 0)}
