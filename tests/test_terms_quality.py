"""Quality-based availability: a slot whose mean loss or RTT is strictly over the
contract's limit counts as down (not as an outage): the rule at its boundaries, the
config's mistakes, the slots read from the real database, and `report sla`."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector import Database
from collector.writer import write_samples
from kernel.config import parse_config
from kernel.domain import LinkStatus, MaintenanceWindow, Outcome, Sample
from kernel.errors import ConfigError
from sla.compute import Period, WindowTerms, compute_window
from sla.measurements import quality_figures
from sla.quality import QualityRule, SlotFigures
from sla.spans import US_PER_S, to_us
from sla.windows import parse_window
from tests.helpers import linkwatch, words

UP, DOWN, DEGRADED = LinkStatus.UP, LinkStatus.DOWN, LinkStatus.DEGRADED
WINDOW = parse_window("2026-W47", ZoneInfo("UTC"))  # Monday 2026-11-16 00:00 UTC
START = WINDOW.start
END = WINDOW.end
MINUTE = 60 * US_PER_S


def minute(n: float) -> datetime:
    return START + timedelta(minutes=n)


def loss(n: int, *values: str) -> SlotFigures:
    """Slot n (minutes from the window's start) with these loss samples."""
    return SlotFigures(to_us(minute(n)), sum((Decimal(v) for v in values), Decimal(0)), len(values))


def rtt(n: int, *values: str) -> SlotFigures:
    return SlotFigures(
        to_us(minute(n)),
        rtt_sum=sum((Decimal(v) for v in values), Decimal(0)),
        rtt_count=len(values),
    )


ALL_UP = [Period(START, END, UP)]
TERMS = WindowTerms(
    target_pct=Decimal("99.9"),
    quality=QualityRule(MINUTE, loss_pct_over=Decimal(5), rtt_ms_over=Decimal(150)),
)


@dataclass(frozen=True)
class Case:
    name: str
    quality: list[list[SlotFigures]]  # per member
    members: list[list[Period]] = field(default_factory=lambda: [ALL_UP])
    quality_down_s: int = 0
    down_s: int = 0  # quality time included
    incidents: int = 0
    maintenance: list[list[MaintenanceWindow]] | None = None


def _maintenance(start: datetime, end: datetime) -> MaintenanceWindow:
    return MaintenanceWindow(
        id="mw", starts_at=start, ends_at=end, announced_at=start - timedelta(days=7)
    )


CASES = [
    Case("exactly the loss limit is available", [[loss(10, "5")]]),
    Case("just over the loss limit is a minute down", [[loss(10, "5.001")]], [ALL_UP], 60, 60),
    Case("the mean decides, not a single sample: 4 and 6 average 5", [[loss(10, "4", "6")]]),
    Case("a mean just over: 4 and 6.002", [[loss(10, "4", "6.002")]], [ALL_UP], 60, 60),
    Case("exactly the RTT limit is available", [[rtt(3, "150")]]),
    Case("just over the RTT limit", [[rtt(3, "150.000001")]], [ALL_UP], 60, 60),
    Case("a slot with no samples is judged on nothing", [[]]),
    Case("only the poor slots count", [[loss(1, "9"), loss(4, "9")]], [ALL_UP], 120, 120),
    Case(
        "a slot half down: the outage half is down, the available half poor",
        [[loss(20, "50")]],
        [[Period(START, minute(20.5), UP), Period(minute(20.5), minute(30), DOWN),
          Period(minute(30), END, UP)]],
        quality_down_s=30,
        down_s=30 + 570,
        incidents=1,
    ),
    Case(
        "a degraded slot counts as available, so it can be poor",
        [[loss(7, "20")]],
        [[Period(START, minute(7), UP), Period(minute(7), minute(8), DEGRADED),
          Period(minute(8), END, UP)]],
        60,
        60,
    ),
    Case(
        "unknown time in a poor slot is not down: 15 s known of it",
        [[loss(5, "20")]],
        [[Period(START, minute(5.25), UP), Period(minute(6), END, UP)]],
        15,
        15,
    ),
    Case(
        "excluded maintenance takes precedence",
        [[loss(5, "20"), loss(6, "20")]],
        [ALL_UP],
        60,
        60,
        maintenance=[[_maintenance(minute(6), minute(7))]],
    ),
    Case(
        "redundant group: one member of good quality keeps the service available",
        [[loss(5, "20")], []],
        [ALL_UP, ALL_UP],
    ),
    Case(
        "redundant group: both members poor",
        [[loss(5, "20")], [rtt(5, "200")]],
        [ALL_UP, ALL_UP],
        60,
        60,
    ),
    Case(
        "redundant group: one poor, the other down",
        [[loss(5, "20")], []],
        [ALL_UP, [Period(START, minute(5), UP), Period(minute(5), minute(6), DOWN),
                  Period(minute(6), END, UP)]],
        60,
        60,
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_slot_boundaries(case: Case) -> None:
    maintenance = case.maintenance or [[] for _ in case.members]
    result = compute_window(WINDOW, TERMS, case.members, maintenance, END, quality=case.quality)
    assert result.quality_down_us == case.quality_down_s * US_PER_S
    assert result.down_us == case.down_s * US_PER_S
    assert result.incidents == case.incidents


def test_poor_quality_costs_availability_and_budget_but_is_no_outage() -> None:
    terms = WindowTerms(
        target_pct=Decimal("99.9"),
        fee=Decimal("100"),
        per_step_pct=Decimal("10"),
        quality=QualityRule(MINUTE, loss_pct_over=Decimal(5)),
    )
    poor = [loss(n, "10") for n in range(0, 700)]  # 700 min of a 10,080 min week
    result = compute_window(WINDOW, terms, [ALL_UP], [[]], END, quality=[poor])
    assert result.quality_down_us == 700 * MINUTE
    assert result.availability == 1 - Fraction(700, 10080)
    assert result.met is False
    assert result.outages == ()
    assert result.budget_used is not None
    assert result.budget_used > 1
    assert result.credit.steps > 0


def test_without_the_term_slot_figures_change_nothing() -> None:
    plain = WindowTerms(target_pct=Decimal("99.9"))
    with_figures = compute_window(WINDOW, plain, [ALL_UP], [[]], END, quality=[[loss(1, "90")]])
    without = compute_window(WINDOW, plain, [ALL_UP], [[]], END)
    assert with_figures == without


def test_slots_are_aligned_to_the_window_start_and_clipped_to_what_was_measured() -> None:
    # A running window measured until 00:10:30: the poor slot 00:10 counts 30 s.
    now = minute(10.5)
    result = compute_window(
        WINDOW, TERMS, [[Period(START, now, UP)]], [[]], now, quality=[[loss(10, "9")]]
    )
    assert result.quality_down_us == 30 * US_PER_S


# --- configuration ------------------------------------------------------------------------

CONFIG = """\
customers: [{{id: acme, name: Acme, timezone: Europe/Berlin}}]
links:
  - {{id: l1, customer: acme, probes: [{{id: icmp, kind: icmp, host: 127.0.0.1}}]}}
contracts:
  - {{id: c1, customer: acme, links: [l1], target: 99.5,
      availability: {availability}}}
"""


def _problems(availability: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG.format(availability=availability))
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


@pytest.mark.parametrize(
    ("availability", "expected"),
    [
        (
            "{unavailable_when: {over: 1m}}",
            "contracts[0].availability.unavailable_when: give loss_pct_over, rtt_ms_over or both",
        ),
        (
            "{unavailable_when: {loss_pct_over: 5, over: 7m}}",
            "contracts[0].availability.unavailable_when: over 7m must divide an hour, so that "
            "slots line up with the window's hours; use e.g. 10s, 30s, 1m, 5m, 15m or 1h",
        ),
        (
            "{unavailable_when: {loss_pct_over: 100}}",
            "contracts[0].availability.unavailable_when.loss_pct_over: 100: input should be "
            "less than 100",
        ),
        (
            "{unavailable_when: {rtt_ms_over: 0}}",
            "contracts[0].availability.unavailable_when.rtt_ms_over: 0: input should be "
            "greater than 0",
        ),
        (
            "{unavailable_when: {loss_pct_over: 5, jitter_ms_over: 3}}",
            "contracts[0].availability.unavailable_when.jitter_ms_over: unknown key "
            "'jitter_ms_over'; allowed keys here: loss_pct_over, rtt_ms_over, over",
        ),
        (
            "{loss_pct_over: 5}",
            "contracts[0].availability.loss_pct_over: unknown key 'loss_pct_over'; allowed "
            "keys here: unavailable_when",
        ),
    ],
    ids=["no limit", "slot not dividing an hour", "loss of 100", "rtt of 0", "unknown limit",
         "limits without unavailable_when"],
)  # fmt: skip
def test_config_mistakes_are_named(availability: str, expected: str) -> None:
    assert expected in _problems(availability)


def test_the_term_defaults_to_a_one_minute_slot() -> None:
    config = parse_config(CONFIG.format(availability="{unavailable_when: {loss_pct_over: 2.5}}"))
    terms = config.contracts[0].terms_at(START, config.plans)
    assert terms is not None
    assert terms.availability is not None
    limits = terms.availability.unavailable_when
    assert (limits.over, limits.loss_pct_over, limits.rtt_ms_over) == (
        timedelta(minutes=1),
        Decimal("2.5"),
        None,
    )


# --- the slots read from the database -----------------------------------------------------


async def test_slot_figures_are_exact_sums_aligned_to_the_window_start(
    database: Database,
) -> None:
    # Kathmandu is UTC+05:45: its week starts at 18:15 UTC, and so do its slots.
    start = parse_window("2026-W47", ZoneInfo("Asia/Kathmandu")).start.astimezone(UTC)
    assert start.minute == 15

    def icmp(seconds: int, loss_pct: float, rtt_ms: float, outcome: str = "up") -> Sample:
        at = start + timedelta(seconds=seconds)
        return Sample("l1", "icmp", at, Outcome(outcome), rtt_ms=rtt_ms, loss_pct=loss_pct)

    await write_samples(
        database,
        [
            icmp(0, 0.1, 10.0),
            icmp(20, 0.2, 20.0),
            icmp(40, 0.3, 30.0),
            icmp(60, 5.0, 150.0),
            icmp(80, 100.0, 0.0, "down"),  # an outage, which availability counts already
            icmp(120, 7.5, 99.5, "degraded"),
            # An HTTP response time is no round trip: it is left out of the RTT.
            Sample("l1", "web", start + timedelta(seconds=10), Outcome.UP, rtt_ms=900.0),
        ],
    )
    probes = [("l1", "icmp", True), ("l1", "web", False)]
    (slots,) = await quality_figures(
        database, probes, ["l1"], start, start + timedelta(hours=1), MINUTE
    )
    assert slots == [
        SlotFigures(to_us(start), Decimal("0.6"), 3, Decimal("60"), 3),
        SlotFigures(to_us(start) + MINUTE, Decimal("5"), 1, Decimal("150"), 1),
        SlotFigures(to_us(start) + 2 * MINUTE, Decimal("7.5"), 1, Decimal("99.5"), 1),
    ]
    # 0.1 + 0.2 + 0.3 in floats is 0.6000000000000001: the sum is exact, so the mean
    # is exactly 0.2 and a limit of 0.2 is met.
    assert slots[0].loss_mean == Decimal("0.2")


# --- report sla, the way a user meets it --------------------------------------------------

WEEK_START = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)  # 2026-W47, Monday 00:00 Berlin


@pytest.fixture(scope="module")
def reported(pg_base_dir: Path) -> Path:
    directory = Path(tempfile.mkdtemp(dir=pg_base_dir))
    directory.chmod(0o711)
    config = directory / "linkwatch.yaml"
    config.write_text(
        f"""\
data_dir: {directory}
customers: [{{id: acme, name: ACME Corp, timezone: Europe/Berlin}}]
links:
  - {{id: acme-hq, customer: acme, probes: [{{id: icmp, kind: icmp, host: 127.0.0.1,
      interval: 1m}}]}}
contracts:
  - {{id: acme-gold, customer: acme, links: [acme-hq], target: 99.9, window: week,
      fee: "100.00", credit: {{per_step: 10}},
      availability: {{unavailable_when: {{loss_pct_over: 5, rtt_ms_over: 150}}}}}}
"""
    )
    # One sample a minute all week: 10 minutes with 8 % loss, 4 with 151 ms, 3 at
    # exactly 5 % and 150 ms (available), and a 30-minute outage.
    samples = directory / "week.csv"
    with samples.open("w") as handle:
        handle.write("time,link,probe,outcome,rtt_ms,loss_pct\n")
        for n in range(7 * 24 * 60):
            moment = WEEK_START + timedelta(minutes=n)
            outcome, rtt_ms, loss_pct = "up", "4.2", "0"
            if 600 <= n < 610:
                loss_pct = "8"
            elif 700 <= n < 704:
                rtt_ms = "151"
            elif 800 <= n < 803:
                rtt_ms, loss_pct = "150", "5"
            elif 900 <= n < 930:
                outcome, rtt_ms, loss_pct = "down", "", "100"
            handle.write(f"{moment.isoformat()},acme-hq,icmp,{outcome},{rtt_ms},{loss_pct}\n")
    result = linkwatch("import", "samples", "--config", str(config), str(samples))
    assert result.returncode == 0, result.stderr
    return config


def test_report_sla_shows_the_time_unavailable_for_quality(reported: Path) -> None:
    args = ("report", "sla", "--config", str(reported), "--window", "2026-W47")
    table = linkwatch(*args)
    assert table.returncode == 0, table.stderr
    assert "acme-gold acme-hq 2026-W47: unavailable for quality: 14 min" in table.stdout

    (record,) = json.loads(linkwatch(*args, "--format", "json").stdout)
    assert record["quality_down_s"] == 14 * 60
    # Down is the 30-minute outage plus the 14 minutes; only the outage is an incident.
    assert record["down_s"] == 44 * 60
    assert record["incidents"] == 1
    assert record["availability_pct"] == "99.5634"  # 1 - 2,640 / 604,800, truncated
    assert record["met"] is False


def test_report_sla_csv_has_the_quality_column_last_but_one(reported: Path) -> None:
    result = linkwatch(
        "report", "sla", "--config", str(reported), "--window", "2026-W47", "--format", "csv"
    )
    header, row = result.stdout.splitlines()[:2]
    assert header.split(",")[-2:] == ["quality_down_s", "objectives"]
    assert ",840," in row


def test_the_monthly_report_shows_the_quality_rule_and_its_line(reported: Path) -> None:
    result = linkwatch(
        "report", "monthly", "--config", str(reported), "--customer", "acme", "--month", "2026-11"
    )
    assert result.returncode == 0, result.stderr
    shown = re.findall(
        r"<th[^>]*>Unavailable for quality</th>\s*<td[^>]*>([^<]+)</td>", result.stdout
    )
    assert "840 s" in shown
    text = words(result.stdout)
    assert (
        "each 1\u00a0min from the window's start with mean loss over 5 % or mean RTT over "
        "150 ms is unavailable" in text
    )
    assert "plus the 840 s unavailable for quality" in text
