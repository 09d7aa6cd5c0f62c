"""Objectives on any stored metric: the aggregates at their boundaries, the credit a
missed one adds, the config's mistakes, the figures read from the real database, and
`report sla`."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collector import Database
from collector.writer import write_samples
from kernel.config import parse_config
from kernel.domain import LinkStatus, Outcome, Sample
from kernel.errors import ConfigError
from sla.compute import Period, WindowTerms, compute_window
from sla.measurements import metric_figures
from sla.objectives import (
    MetricFigures,
    MetricObjective,
    aggregate_value,
    evaluate_metric_objectives,
)
from sla.windows import parse_window
from tests.helpers import linkwatch, words

WINDOW = parse_window("2026-W47", ZoneInfo("UTC"))


def figures_of(values: list[str], above: str | None = None) -> MetricFigures:
    """What the database returns for these samples (see samples_metric_figures.sql)."""
    ordered = sorted(Decimal(v) for v in values)
    n = len(ordered)
    around = {}
    for name, q in (("p95", Fraction(95, 100)), ("p99", Fraction(99, 100))):
        low = int(q * (n - 1))
        around[name] = (ordered[low], ordered[min(low + 1, n - 1)])
    over = sum(1 for v in ordered if above is not None and v > Decimal(above))
    return MetricFigures(n, sum(ordered, Decimal(0)), ordered[-1], over, around)


def objective(aggregate: str, limit: str, above: str | None = None) -> MetricObjective:
    return MetricObjective(
        "jitter_ms",
        aggregate,  # type: ignore[arg-type]
        Decimal(limit),
        Decimal("5"),
        None if above is None else Decimal(above),
    )


TWENTY = [str(v) for v in range(1, 21)]  # 1 .. 20
o, F = objective, Fraction


@dataclass(frozen=True)
class Case:
    name: str
    objective: MetricObjective
    values: list[str]
    measured: Fraction | None
    met: bool | None


CASES = [
    Case("mean exactly at the limit is met", o("mean", "10.5"), TWENTY, F(21, 2), True),
    Case("mean just over the limit is missed", o("mean", "10.49"), TWENTY, F(21, 2), False),
    Case("mean is exact: 0.1 + 0.2 over 2", o("mean", "0.15"), ["0.1", "0.2"], F(3, 20), True),
    # rank 0.95 x 19 = 18.05: 19 + 0.05 x (20 - 19)
    Case("p95 interpolates between neighbours", o("p95", "19.05"), TWENTY, F(1905, 100), True),
    Case("p95 just over", o("p95", "19.04"), TWENTY, F(1905, 100), False),
    # rank 0.99 x 19 = 18.81
    Case("p99", o("p99", "19.81"), TWENTY, F(1981, 100), True),
    Case("p95 of one sample is that sample", o("p95", "3"), ["3"], F(3), True),
    Case("max at the limit is met", o("max", "20"), TWENTY, F(20), True),
    Case("max over the limit", o("max", "19.999"), TWENTY, F(20), False),
    # 15 itself is not over 15: 5 of 20 samples (16 .. 20) are
    Case("share_above at the limit", o("share_above", "25", "15"), TWENTY, F(25), True),
    Case("share_above over the limit", o("share_above", "24.9", "15"), TWENTY, F(25), False),
    Case("no sample: neither met nor missed", o("max", "1"), [], None, None),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_aggregates_at_their_boundaries(case: Case) -> None:
    found = (
        figures_of(case.values, None if case.objective.above is None else str(case.objective.above))
        if case.values
        else MetricFigures()
    )
    assert aggregate_value(case.objective, found) == case.measured
    (result,) = evaluate_metric_objectives([case.objective], [found])
    assert result.met is case.met
    assert result.credit_pct == (Decimal(5) if case.met is False else Decimal(0))


def test_a_missed_objective_adds_its_credit_before_the_cap() -> None:
    missed = objective("max", "1")
    also = MetricObjective("in_errors_per_s", "mean", Decimal(0), Decimal("7"))
    terms = WindowTerms(
        target_pct=Decimal("99"),
        fee=Decimal("200"),
        cap_pct=Decimal("10"),
        metric_objectives=(missed, also),
    )
    up = [[Period(WINDOW.start, WINDOW.end, LinkStatus.UP)]]
    result = compute_window(
        WINDOW,
        terms,
        up,
        [[]],
        WINDOW.end,
        metric_figures=[figures_of(["2"]), figures_of(["0.5"])],
    )
    assert [m.met for m in result.metric_objectives] == [False, False]
    assert result.credit.objective_pct == Decimal(12)
    assert result.credit.total_pct == Decimal(10)  # the cap
    assert result.credit.amount == Decimal("20.00")
    assert result.met is True  # availability itself is fine


def test_without_objectives_nothing_moves() -> None:
    up = [[Period(WINDOW.start, WINDOW.end, LinkStatus.UP)]]
    plain = WindowTerms(target_pct=Decimal("99"))
    result = compute_window(WINDOW, plain, up, [[]], WINDOW.end)
    assert result.metric_objectives == ()
    assert result.credit.objective_pct == 0


# --- configuration ------------------------------------------------------------------------

CONFIG = """\
customers: [{{id: acme, name: Acme, timezone: Europe/Berlin}}]
links:
  - id: l1
    customer: acme
    probes:
      - {{id: ping, kind: icmp, host: 127.0.0.1}}
      - {{id: web, kind: http, url: "http://127.0.0.1:8080/"}}
  - id: l2
    customer: acme
    probes: [{{id: port, kind: snmp, host: 127.0.0.1, community: public,
               interface: {{name: eth0}}}}]
plans:
  - {{id: gold, target: 99.5, objectives: {plan}}}
contracts:
  - {{id: c1, customer: acme, links: [l1], plan: gold, objectives: {contract}}}
  - {{id: c2, customer: acme, links: [l2], target: 99.5}}
"""


def _problems(contract: str, plan: str = "[]") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG.format(contract=contract, plan=plan))
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


L1_MEASURES = (
    "connect_ms, first_byte_ms, jitter_ms, loss_pct, redirect_ms, redirects, rtt_max_ms, "
    "rtt_min_ms, rtt_ms, total_ms"
)


@pytest.mark.parametrize(
    ("contract", "expected"),
    [
        (
            "[{metric: in_errors_per_s, aggregate: mean, limit: 1}]",
            "contracts[0].objectives[0].metric: metric 'in_errors_per_s' is not measured by "
            f"the probes of the contract's links (l1); they measure: {L1_MEASURES}",
        ),
        (
            # http://: no TLS handshake, and an address: no name to resolve
            "[{metric: tls_ms, aggregate: p95, limit: 50, probe: web}]",
            "contracts[0].objectives[0].metric: metric 'tls_ms' is not measured by probe web "
            "of the contract's links (l1); it measures: connect_ms, first_byte_ms, "
            "redirect_ms, redirects, total_ms",
        ),
        (
            "[{metric: rtt_ms, aggregate: max, limit: 5, probe: dns}]",
            "contracts[0].objectives[0].probe: no link of the contract (l1) has a probe "
            "'dns'; their probes: ping, web",
        ),
        (
            "[{metric: rtt_ms, aggregate: share_above, limit: 5}]",
            "contracts[0].objectives[0]: share_above needs above: the value a sample must "
            "exceed to count, e.g. above: 150 with limit: 5 (at most 5 % of samples over 150)",
        ),
        (
            "[{metric: rtt_ms, aggregate: mean, limit: 5, above: 3}]",
            "contracts[0].objectives[0]: above applies only to aggregate share_above, not "
            "mean; drop it",
        ),
        (
            "[{metric: rtt_ms, aggregate: share_above, above: 100, limit: 120}]",
            "contracts[0].objectives[0]: limit 120 of share_above is a percent of samples; "
            "use 0 to 100",
        ),
        (
            "[{metric: rtt_ms, aggregate: median, limit: 5}]",
            "contracts[0].objectives[0].aggregate: 'median' is not allowed; use one of "
            "'mean', 'p95', 'p99', 'max' or 'share_above'",
        ),
        (
            "[{metric: RTT, aggregate: max, limit: 5}]",
            "contracts[0].objectives[0].metric: 'RTT' does not have the required form",
        ),
    ],
    ids=["metric no probe measures", "metric the named probe lacks", "unknown probe",
         "share_above without above", "above without share_above", "share over 100",
         "unknown aggregate", "not a metric name"],
)  # fmt: skip
def test_config_mistakes_are_named(contract: str, expected: str) -> None:
    assert expected in _problems(contract)


def test_a_plans_objective_is_judged_for_each_contract_of_the_plan() -> None:
    problems = _problems("[]", plan="[{metric: out_utilisation_pct, aggregate: p95, limit: 80}]")
    assert problems == [
        "plans[0].objectives[0].metric: metric 'out_utilisation_pct' is not measured by the "
        f"probes of contract c1's links (l1); they measure: {L1_MEASURES}"
    ]


def test_snmp_metrics_are_objectives() -> None:
    text = CONFIG.format(contract="[]", plan="[]").replace(
        "{id: c2, customer: acme, links: [l2], target: 99.5}",
        "{id: c2, customer: acme, links: [l2], target: 99.5, objectives: ["
        "{metric: in_errors_per_s, aggregate: max, limit: 0.5, credit: 2}, "
        "{metric: out_utilisation_pct, aggregate: share_above, above: 90, limit: 1}]}",
    )
    config = parse_config(text)
    terms = config.contracts[1].terms_at(WINDOW.start, config.plans)
    assert terms is not None
    assert [o.name for o in terms.objectives] == [
        "in_errors_per_s max",
        "out_utilisation_pct share above 90",
    ]


# --- the figures read from the database ---------------------------------------------------


async def test_figures_are_exact_over_the_available_samples(database: Database) -> None:
    start = WINDOW.start.astimezone(UTC)
    errors = ["0", "0.25", "3.5", "0", "12", "0.1", "0.2", "7"]
    samples = [
        Sample(
            "l2", "port", start + timedelta(minutes=i), Outcome.UP,
            metrics={"in_errors_per_s": float(v), "in_bps": 1e6},
        )
        for i, v in enumerate(errors)
    ]  # fmt: skip
    samples += [
        # Down: its figures are the outage's, which availability counts already.
        Sample("l2", "port", start + timedelta(minutes=30), Outcome.DOWN,
               metrics={"in_errors_per_s": 900.0}),
        # No such key: left out.
        Sample("l2", "port", start + timedelta(minutes=31), Outcome.UP, metrics={"in_bps": 1.0}),
        # Another link's probe: not asked for.
        Sample("l9", "port", start, Outcome.UP, metrics={"in_errors_per_s": 50.0}),
    ]  # fmt: skip
    await write_samples(database, samples)
    pairs = [("l2", "port")]
    end = start + timedelta(hours=1)
    expected = figures_of(errors, above="1")
    for aggregate, limit, above in (
        ("mean", "3", None),
        ("p95", "10", None),
        ("p99", "11", None),
        ("max", "12", None),
        ("share_above", "30", "1"),
    ):
        wanted = MetricObjective(
            "in_errors_per_s",
            aggregate,  # type: ignore[arg-type]
            Decimal(limit),
            above=None if above is None else Decimal(above),
        )
        found = await metric_figures(database, wanted, pairs, start, end)
        assert found.count == 8
        assert aggregate_value(wanted, found) == aggregate_value(wanted, expected), aggregate
    # 0.25 + 3.5 + 12 + 0.1 + 0.2 + 7 = 23.05, exactly: a mean of 2.88125
    mean = MetricObjective("in_errors_per_s", "mean", Decimal(3))
    assert aggregate_value(mean, await metric_figures(database, mean, pairs, start, end)) == (
        Fraction("2.88125")
    )
    # Three of the eight are over 1: 37.5 %
    share = MetricObjective("in_errors_per_s", "share_above", Decimal(30), above=Decimal(1))
    found = await metric_figures(database, share, pairs, start, end)
    assert aggregate_value(share, found) == Fraction("37.5")


async def test_a_column_metric_reads_its_column(database: Database) -> None:
    start = WINDOW.start.astimezone(UTC)
    await write_samples(
        database,
        [
            Sample("l1", "ping", start + timedelta(minutes=i), Outcome.UP, rtt_ms=5.0,
                   jitter_ms=j)
            for i, j in enumerate((0.5, 1.5, 4.0))
        ],
    )  # fmt: skip
    jitter = MetricObjective("jitter_ms", "max", Decimal(3))
    found = await metric_figures(
        database, jitter, [("l1", "ping")], start, start + timedelta(hours=1)
    )
    assert (found.count, aggregate_value(jitter, found)) == (3, Fraction(4))


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
  - {{id: acme-gold, customer: acme, links: [acme-hq], target: 99.5, window: week,
      fee: "100.00", latency: {{p95_ms: 5, credit: 1}},
      objectives: [{{metric: jitter_ms, aggregate: p95, limit: 2, credit: 3}},
                   {{metric: rtt_max_ms, aggregate: max, limit: 50, credit: 4}}]}}
"""
    )
    # A sample a minute; jitter 1 ms, but 3 ms for the last 10 % of the week.
    samples = directory / "week.csv"
    minutes = 7 * 24 * 60
    with samples.open("w") as handle:
        handle.write("time,link,probe,outcome,rtt_ms,rtt_max_ms,jitter_ms,loss_pct\n")
        for n in range(minutes):
            moment = WEEK_START + timedelta(minutes=n)
            jitter = "3" if n >= minutes * 9 // 10 else "1"
            handle.write(f"{moment.isoformat()},acme-hq,icmp,up,4.2,9.5,{jitter},0\n")
    result = linkwatch("import", "samples", "--config", str(config), str(samples))
    assert result.returncode == 0, result.stderr
    return config


def test_report_sla_shows_each_objective_and_a_line_per_missed_one(reported: Path) -> None:
    args = ("report", "sla", "--config", str(reported), "--window", "2026-W47")
    table = linkwatch(*args)
    assert table.returncode == 0, table.stderr
    missed = [line for line in table.stdout.splitlines() if "objective missed" in line]
    assert missed == [
        "acme-gold acme-hq 2026-W47: objective missed: jitter_ms p95 3 ms over the limit "
        "2 ms (credit 3 %)"
    ]
    (record,) = json.loads(linkwatch(*args, "--format", "json").stdout)
    assert record["objectives"] == [
        {"name": "latency p95", "limit": "5", "unit": "ms", "measured": "4.2",
         "samples": None, "met": True, "credit_pct": "0"},
        {"name": "jitter_ms p95", "limit": "2", "unit": "ms", "measured": "3",
         "samples": 10080, "met": False, "credit_pct": "3"},
        {"name": "rtt_max_ms max", "limit": "50", "unit": "ms", "measured": "9.5",
         "samples": 10080, "met": True, "credit_pct": "0"},
    ]  # fmt: skip
    assert record["objectives_met"] is False
    assert record["credit_pct"] == "3"
    assert record["credit_amount"] == "3.00"
    assert record["quality_down_s"] is None  # no quality term


def test_the_monthly_report_lists_each_objective(reported: Path) -> None:
    result = linkwatch(
        "report", "monthly", "--config", str(reported), "--customer", "acme", "--month", "2026-11"
    )
    assert result.returncode == 0, result.stderr
    text = words(result.stdout)
    assert "jitter_ms: p95 at most 2 over the available samples; 3 % if missed" in text
    assert "jitter_ms p95 (10,080 samples) 2 ms 3 ms missed 3 %" in text
    assert "rtt_max_ms max (10,080 samples) 50 ms 9.5 ms met 0 %" in text
