"""`linkwatch report sla` end to end: samples imported from CSV, states derived, the
window computed, and the record billing systems read."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sla.records import FIELDS, to_table
from tests.helpers import linkwatch

WEEK_START = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)  # 2026-W47 starts Mon 00:00 Berlin
OUTAGE = (WEEK_START + timedelta(days=2, hours=3), WEEK_START + timedelta(days=2, hours=5))


def _config(directory: Path) -> Path:
    config = directory / "linkwatch.yaml"
    config.write_text(
        f"""\
data_dir: {directory}
customers:
  - {{id: acme, name: ACME Corp, timezone: Europe/Berlin}}
  - {{id: globex, name: Globex, timezone: America/New_York}}
links:
  - {{id: acme-hq, customer: acme, probes: [{{id: icmp, kind: icmp, host: 127.0.0.1,
      interval: 1m}}]}}
  - {{id: globex-dc, customer: globex, probes: [{{id: icmp, kind: icmp, host: 127.0.0.2,
      interval: 1m}}]}}
plans:
  - {{id: gold, target: 99.5, window: week, currency: EUR,
      credit: {{step: 0.5, per_step: 5, cap: 50}}, latency: {{p95_ms: 5, credit: 5}},
      loss: {{max_pct: 0.1}}}}
contracts:
  - {{id: acme-gold, customer: acme, links: [acme-hq], plan: gold, fee: "250.00",
      versions: [{{effective_from: "2026-11-18T00:00:00+01:00", target: 99.9,
                  fee: "300.00"}}]}}
  - {{id: globex-monthly, customer: globex, links: [globex-dc], target: 99.9,
      window: month, fee: "100.00", currency: USD}}
maintenance:
  - {{id: mw-1, links: [acme-hq], start: "2026-11-20T02:00:00+01:00",
      end: "2026-11-20T03:00:00+01:00", announced_at: "2026-11-10T10:00:00+01:00"}}
"""
    )
    return config


def _week_of_samples(path: Path) -> None:
    """One sample a minute for 2026-W47 on acme-hq: down for two hours, and down during
    the announced maintenance hour (which is excluded)."""
    maintenance = (datetime(2026, 11, 20, 1, tzinfo=UTC), datetime(2026, 11, 20, 2, tzinfo=UTC))
    with path.open("w") as handle:
        handle.write("time,link,probe,outcome,rtt_ms,loss_pct\n")
        for minute in range(7 * 24 * 60):
            moment = WEEK_START + timedelta(minutes=minute)
            down = OUTAGE[0] <= moment < OUTAGE[1] or maintenance[0] <= moment < maintenance[1]
            outcome, rtt, loss = ("down", "", "100") if down else ("up", "4.2", "0")
            handle.write(f"{moment.isoformat()},acme-hq,icmp,{outcome},{rtt},{loss}\n")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, pg_base_dir: Path) -> Path:
    import tempfile

    directory = Path(tempfile.mkdtemp(dir=pg_base_dir))
    directory.chmod(0o711)
    config = _config(directory)
    samples = directory / "week.csv"
    _week_of_samples(samples)
    result = linkwatch("import", "samples", "--config", str(config), str(samples))
    assert result.returncode == 0, result.stderr
    return config


def test_json_report_has_every_field_billing_relies_on(loaded: Path) -> None:
    result = linkwatch(
        "report", "sla", "--config", str(loaded), "--window", "2026-W47", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert len(records) == 1  # the monthly contract is not measured in weeks
    record = records[0]
    assert set(FIELDS) <= set(record)
    # 7,200 s down (the outage); the maintenance hour is excluded; the last sample's
    # minute ends the data, so the week's final 60 s are unknown (excluded by policy).
    assert record == {
        "contract": "acme-gold",
        "customer": "acme",
        "link": "acme-hq",
        "window": "2026-W47",
        "window_start": "2026-11-16T00:00:00+01:00",
        "window_end": "2026-11-23T00:00:00+01:00",
        "window_s": 604800,
        "excluded_s": 3600,
        "unknown_s": 0,
        "down_s": 7200,
        "eligible_s": 601200,
        "coverage_pct": "100.0000",
        "availability_pct": "98.8023",
        "target_pct": "99.5",
        "met": False,
        "budget_s": 3006,
        "budget_used_pct": "239.5209",
        "incidents": 1,
        "credit_steps": 2,
        "credit_pct": "10",
        "credit_amount": "25.00",
        "currency": "EUR",
        "status": "closed",
        "budget_remaining_s": -4194,
        "burn_rate": "2.39",  # 2.3952…, truncated like every figure, never rounded up
        "budget_warning_pct": 100,
        "objectives_met": True,  # RTT 4.2 ms and no loss on the available samples
        "needs_review": False,  # measured all week
        "review_reason": None,
        "withheld_credit_amount": None,
        "restore_pct": "0",  # no restore term
        "restores_over": 0,
        "restores_continuing": 0,
        "outside_hours_s": 0,  # every hour is covered
        "customer_caused_s": 0,
        "credit_before_annual_cap": None,  # the contract has no annual cap
        "annual_cap_amount": None,
        "annual_cap_remaining": None,
        "quality_down_s": None,  # no quality term
        "objectives": [
            {
                "name": "latency p95",
                "limit": "5",
                "unit": "ms",
                "measured": "4.2",
                "samples": None,
                "met": True,
                "credit_pct": "0",
            },
            {
                "name": "loss",
                "limit": "0.1",
                "unit": "%",
                "measured": "0",
                "samples": None,
                "met": True,
                "credit_pct": "0",
            },
        ],
    }


def test_the_report_and_the_monthly_report_truncate_the_burn_rate_alike(loaded: Path) -> None:
    # 239.5209 % of the budget over the whole week: a burn rate of 2.3952…, shown as
    # 2.39 by both (the monthly report marks the digits it cut), never 2.40.
    (record,) = json.loads(
        linkwatch(
            "report", "sla", "--config", str(loaded), "--window", "2026-W47", "--format", "json"
        ).stdout
    )
    monthly = linkwatch(
        "report", "monthly", "--config", str(loaded), "--customer", "acme", "--month", "2026-11"
    )
    assert monthly.returncode == 0, monthly.stderr
    shown = re.findall(r"<th[^>]*>Burn rate</th>\s*<td[^>]*>([^<]+)</td>", monthly.stdout)
    assert record["burn_rate"] == "2.39"
    assert "2.39…" in shown


def test_a_window_uses_the_contract_version_in_force_at_its_start(loaded: Path) -> None:
    # The version from Wednesday of week 47 applies from week 48 on, not mid-window.
    reports = {}
    for window in ("2026-W47", "2026-W48"):
        result = linkwatch(
            "report", "sla", "--config", str(loaded), "--window", window, "--format", "json"
        )
        assert result.returncode == 0, result.stderr
        (reports[window],) = json.loads(result.stdout)
    assert reports["2026-W47"]["target_pct"] == "99.5"
    assert reports["2026-W48"]["target_pct"] == "99.9"
    # No samples that week: only the last sample of week 47, good for stale_after (3 min)
    # into week 48, is known time there.
    assert reports["2026-W48"]["eligible_s"] == 120


def test_csv_and_table_forms(loaded: Path) -> None:
    result = linkwatch(
        "report", "sla", "--config", str(loaded), "--window", "2026-W47", "--format", "csv"
    )
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(FIELDS)
    assert (rows[0]["availability_pct"], rows[0]["met"], rows[0]["credit_amount"]) == (
        "98.8023",
        "false",
        "25.00",
    )
    # The table is for people: every figure by the shared rules, with plain spaces.
    table = linkwatch("report", "sla", "--config", str(loaded), "--window", "2026-W47")
    header, row = (re.split(r" {2,}", line.strip()) for line in table.stdout.splitlines()[:2])
    assert dict(zip(header, row, strict=False)) == {  # no review: its cell is empty
        "contract": "acme-gold",
        "link": "acme-hq",
        "window": "2026-W47",
        "availability": "98.802 %",  # 98.8023 %, to the default three decimals
        "target": "99.5 %",
        "result": "Target missed",
        "down": "2 h",
        "unknown": "none",
        "excluded": "1 h",
        "coverage": "100 %",
        "inc.": "1",
        "credit %": "10 %",
        "credit": "25.00 EUR",
        "status": "closed",
    }
    # A contract asking for two decimals has two.
    (record,) = json.loads(
        linkwatch(
            "report", "sla", "--config", str(loaded), "--window", "2026-W47", "--format", "json"
        ).stdout
    )
    assert " 98.80 % " in to_table([record], decimals={"acme-gold": 2})


def test_a_window_before_any_data_has_no_record_and_says_why(loaded: Path) -> None:
    # globex-dc was never measured: October has nothing to report for Globex, as the
    # ledger has no row for it (a month of "n/a" would be a window nobody measured).
    result = linkwatch(
        "report", "sla", "--config", str(loaded), "--window", "2026-10", "--customer", "globex"
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert (
        "linkwatch: 2026-10 was not measured: the links of globex-monthly have not been "
        "measured yet"
    ) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_window_that_has_not_begun_is_refused_not_reported_as_open(loaded: Path) -> None:
    for args, message in [
        (
            ["--window", "2099-W10"],
            "linkwatch: 2099-W10 has not begun yet: it begins 2099-03-02 00:00 CET "
            "(Europe/Berlin) for acme-gold",
        ),
        (
            ["--window", "2099-01", "--customer", "globex"],
            "linkwatch: 2099-01 has not begun yet: it begins 2099-01-01 00:00 EST "
            "(America/New_York) for globex-monthly",
        ),
    ]:
        result = linkwatch("report", "sla", "--config", str(loaded), *args, "--format", "json")
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert message in result.stderr
        assert "Traceback" not in result.stderr
    for command in (["credits", "list"], ["credits", "export"], ["credits", "refresh"]):
        result = linkwatch(*command, "--config", str(loaded), "--window", "2099-W10")
        assert result.returncode == 2, result.stderr
        assert "2099-W10 has not begun yet: it begins 2099-03-02 00:00 CET" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "2026-W54"], "--window '2026-W54': 2026 has no ISO week 54"),
        (["--window", "last week"], "--window 'last week' is not a window; use an ISO week"),
        (
            ["--window", "2026-W47", "--customer", "initech"],
            "--customer 'initech' is not a customer; defined: acme, globex",
        ),
    ],
)
def test_bad_arguments_are_explained(loaded: Path, args: list[str], message: str) -> None:
    result = linkwatch("report", "sla", "--config", str(loaded), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_rebuild_states_recomputes_a_range(loaded: Path) -> None:
    result = linkwatch(
        "db",
        "rebuild-states",
        "--config",
        str(loaded),
        "--from",
        "2026-11-16T00:00:00+01:00",
        "--to",
        "2026-11-23T00:00:00+01:00",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
