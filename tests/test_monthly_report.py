"""`linkwatch report monthly`: a month of samples imported from CSV, the customer's
printable report rendered, its numbers and method text checked as a person would read
them, and the page printed to PDF by headless Chromium."""

from __future__ import annotations

import re
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from collector import Database
from kernel.domain import Sample
from sla.compute import Objective, ObjectiveResult, truncate_pct
from sla.monthly import ObjectiveView, _budget_rows, _objectives
from tests.browser_kit import CHROMIUM, LAUNCH_ARGS
from tests.helpers import linkwatch

# October 2026 in Berlin: 31 days plus the hour gained when DST ends on Sunday the 25th.
MONTH_START = datetime(2026, 9, 30, 22, 0, tzinfo=UTC)  # 2026-10-01 00:00 CEST
MONTH_END = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # 2026-11-01 00:00 CET
DATA_START = datetime(2026, 9, 27, 22, 0, tzinfo=UTC)  # Monday of 2026-W40, 00:00 CEST
DATA_END = datetime(2026, 11, 1, 23, 0, tzinfo=UTC)  # Monday after 2026-W44, 00:00 CET


def _cest(day: int, hour: int, minute: int = 0) -> datetime:
    """A time on an October 2026 day before the 25th, given as Berlin summer time."""
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC) - timedelta(hours=2)


# acme-hq (monthly contract): a 45-minute outage, a monitor gap, two hours of announced
# maintenance with a down hour in it, and a late-announced window with 30 minutes down.
HQ_DOWN = [
    (_cest(14, 10), _cest(14, 10, 45)),
    (_cest(20, 2), _cest(20, 3)),  # inside mw-announced: excluded
    (_cest(22, 1), _cest(22, 1, 30)),  # inside mw-late: counts
]
HQ_GAP = (_cest(5, 12), _cest(5, 12, 30))  # no samples: unknown from 12:02 (stale after 3 m)
# acme-branch (weekly contract): two hours down in 2026-W41, one lone lost sample.
BRANCH_DOWN = [(_cest(7, 9), _cest(7, 11)), (_cest(15, 8), _cest(15, 8, 1))]


def _config(directory: Path) -> Path:
    config = directory / "linkwatch.yaml"
    config.write_text(
        f"""\
data_dir: {directory}
customers:
  - {{id: acme, name: ACME Corp & Sons, timezone: Europe/Berlin}}
  - {{id: globex, name: Globex, timezone: America/New_York}}
links:
  - {{id: acme-hq, customer: acme, description: Head office fibre,
      probes: [{{id: icmp, kind: icmp, host: 127.0.0.1, interval: 1m}}]}}
  - {{id: acme-branch, customer: acme,
      probes: [{{id: icmp, kind: icmp, host: 127.0.0.2, interval: 1m}}]}}
  - {{id: globex-dc, customer: globex,
      probes: [{{id: icmp, kind: icmp, host: 127.0.0.3, interval: 1m}}]}}
plans:
  - {{id: gold, target: 99.5, window: week, currency: EUR,
      credit: {{step: 0.5, per_step: 5, cap: 50}}}}
contracts:
  - {{id: acme-monthly, customer: acme, links: [acme-hq], target: 99.9, window: month,
      fee: "1000.00", currency: EUR,
      credit: {{step: 0.5, per_step: 10, cap: 30,
               incidents: {{count: 2, min_duration: 30m, credit: 5}}}},
      latency: {{p95_ms: 40, credit: 5}}}}
  - {{id: acme-branch-gold, customer: acme, links: [acme-branch], plan: gold, fee: "250.00"}}
  - {{id: globex-monthly, customer: globex, links: [globex-dc], target: 99.9,
      window: month, fee: "100.00", currency: USD}}
maintenance:
  - {{id: mw-announced, description: Line card swap, links: [acme-hq],
      start: "2026-10-20T02:00:00+02:00", end: "2026-10-20T04:00:00+02:00",
      announced_at: "2026-10-10T02:00:00+02:00"}}
  - {{id: mw-late, description: "Emergency <firmware> fix", links: [acme-hq],
      start: "2026-10-22T01:00:00+02:00", end: "2026-10-22T02:00:00+02:00",
      announced_at: "2026-10-21T12:00:00+02:00"}}
"""
    )
    return config


def _month_of_samples(path: Path) -> None:
    """One sample a minute on both acme links from Monday of 2026-W40 to the end of W44."""
    with path.open("w") as handle:
        handle.write("time,link,probe,outcome,rtt_ms,loss_pct,error\n")
        moment = DATA_START
        while moment < DATA_END:
            for link, downs in (("acme-hq", HQ_DOWN), ("acme-branch", BRANCH_DOWN)):
                if link == "acme-hq" and HQ_GAP[0] <= moment < HQ_GAP[1]:
                    continue
                if any(start <= moment < end for start, end in downs):
                    row = "down,,100,no reply (5/5 lost)"
                else:
                    row = "up,4.2,0,"
                handle.write(f"{moment.isoformat()},{link},icmp,{row}\n")
            moment += timedelta(minutes=1)


@pytest.fixture(scope="module")
def loaded(pg_base_dir: Path) -> Path:
    directory = Path(tempfile.mkdtemp(dir=pg_base_dir))
    directory.chmod(0o711)
    config = _config(directory)
    samples = directory / "october.csv"
    _month_of_samples(samples)
    result = linkwatch("import", "samples", "--config", str(config), str(samples), timeout=300)
    assert result.returncode == 0, result.stderr
    return config


@pytest.fixture(scope="module")
def report(loaded: Path) -> str:
    output = loaded.parent / "acme-2026-10.html"
    result = linkwatch(
        "report",
        "monthly",
        "--config",
        str(loaded),
        "--customer",
        "acme",
        "--month",
        "2026-10",
        "--output",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    return output.read_text(encoding="utf-8")


class _Checker(HTMLParser):
    """Collects the visible text and fails on tags closed out of order or left open."""

    VOID = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
        | {"track", "wbr"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []
        self.ids: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids += [value for name, value in attrs if name == "id" and value]
        if tag in ("style", "title"):
            self._skip += 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title"):
            self._skip -= 1
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def _read(html: str) -> tuple[_Checker, str]:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    return checker, " ".join(" ".join(checker.text).split())


def test_the_report_is_well_formed_html(report: str) -> None:
    checker, _ = _read(report)
    assert report.lstrip().lower().startswith("<!doctype html>")
    assert checker.problems == []
    assert checker.stack == [], f"unclosed: {checker.stack}"
    assert len(checker.ids) == len(set(checker.ids)), "duplicate ids"
    # Autoescaped: the maintenance description's markup is text, the ampersand an entity.
    assert "Emergency &lt;firmware&gt; fix" in report
    assert "<firmware>" not in report
    assert "ACME Corp &amp; Sons" in report


def test_header_names_the_customer_period_and_time_zone(report: str) -> None:
    _, text = _read(report)
    assert "Service level report · October 2026" in text
    assert "ACME Corp & Sons (acme)" in text
    assert "2026-10-01 00:00:00 CEST to 2026-11-01 00:00:00 CET" in text
    assert "Europe/Berlin; every time in this report is local time there" in text
    assert "2026-W40, 2026-W41, 2026-W42, 2026-W43, 2026-W44" in text
    assert "globex" not in report  # only this customer's contracts
    assert "All reports" not in text  # a file has no portal to go back to; the page has


def test_monthly_contract_shows_every_step(report: str) -> None:
    _, text = _read(report)
    window_s = 31 * 86400 + 3600  # the DST hour
    excluded_s = 2 * 3600  # mw-announced; mw-late was announced too late
    unknown_s = 28 * 60  # the gap, after the last sample's 3 minutes
    down_s = 45 * 60 + 30 * 60  # the outage and the late-announced window's down half hour
    eligible_s = window_s - excluded_s - unknown_s
    availability = Fraction(eligible_s - down_s, eligible_s)
    shown = f"{truncate_pct(availability)} %"
    assert (window_s, eligible_s, shown) == (2_682_000, 2_673_120, "99.8316 %")
    for expected in [
        "Window length 2,682,000 s real elapsed time from start to end (31 d 1 h)",
        "Excluded maintenance 7,200 s 1 announced window with enough notice",
        "Unknown time 1,680 s time with no measurement",
        "contract policy exclude: removed from the eligible time",
        "Coverage 99.93 % known time ÷ window = (2,682,000 − 1,680) ÷ 2,682,000",
        "Down time 4,500 s confirmed outages outside excluded maintenance (2 listed below)",
        "Eligible time 2,673,120 s window − excluded − unknown = 2,682,000 − 7,200 − 1,680",
        "Availability 99.831 % (eligible − down) ÷ eligible = (2,673,120 − 4,500) ÷ 2,673,120"
        " = 99.831657… %, truncated to 3 decimal places (never rounded up)",
        "Target 99.9 % missed",
        "Allowed down time 2,673.12 s (100 % − 99.9 %) × 2,673,120 s",
        "Budget used 168.34 % down ÷ allowed = 4,500 ÷ 2,673.12 (over budget)",
        "Budget remaining −1,826.88 s allowed − down = 2,673.12 − 4,500 (negative",
        "Warnings reached 50 %, 80 %, 100 %",
        "Shortfall 0.068342… points target − availability = 99.9 − 99.831657…",
        "Steps 1 × 10 % = 10 % 0.068342… ÷ 0.5 = 0.136685…, rounded up",
        "Incident credit 5 % 2 outages of at least 30 min; 2 or more earn 5 %",
        "Objectives credit 0 % credit of the performance objectives missed",
        "Credit 15 % the lesser of the cap 30 % and 10 % + 5 % + 0 %",
        "Credit amount 150.00 EUR fee 1,000.00 EUR × 15 %, rounded half up",
        "Performance objectives Objective Limit Measured Result Credit latency p95 40 ms",
    ]:
        assert expected in text, expected


def test_outages_are_listed_in_local_time_with_what_saw_them(report: str) -> None:
    _, text = _read(report)
    assert (
        "1 2026-10-14 10:00:00 CEST 2026-10-14 10:45:00 CEST 45 min 2,700 s"
        " acme-hq: icmp from 10:00:00: no reply (5/5 lost)"
    ) in text
    assert "2 2026-10-22 01:00:00 CEST 2026-10-22 01:30:00 CEST 30 min 1,800 s" in text
    # The down hour inside announced maintenance is not an outage of the report.
    assert "2026-10-20 02:00:00 CEST 2026-10-20 03:00:00 CEST" not in text


def test_maintenance_decisions_give_their_reasons(report: str) -> None:
    _, text = _read(report)
    assert (
        "mw-announced Line card swap 2026-10-20 02:00:00 CEST to 2026-10-20 04:00:00 CEST"
        " 2026-10-10 02:00:00 CEST excluded announced 10 d ahead (notice required: 3 d)"
    ) in text
    assert (
        "mw-late Emergency <firmware> fix 2026-10-22 01:00:00 CEST to 2026-10-22 02:00:00 CEST"
        " 2026-10-21 12:00:00 CEST counted announced only 13 h ahead; the contract requires"
        " 3 d, so it counts normally"
    ) in text


def test_weekly_contract_shows_each_week_overlapping_the_month(report: str) -> None:
    _, text = _read(report)
    for week in ("2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44"):
        assert f"acme-branch · Week {week}" in text
    assert "2026-09-28 00:00:00 CEST to 2026-10-05 00:00:00 CEST" in text  # whole, not cut
    assert "Weeks 2026-W40 and 2026-W44 cross the month's boundary" in text
    # W41: two hours down; the lone lost sample of W42 is no outage.
    assert "acme-branch-gold acme-branch 2026-W41 98.809 % 99.5 % Target missed" in text
    assert "acme-branch-gold acme-branch 2026-W42 100.000 % 99.5 % Target met" in text
    assert "Steps 2 × 5 % = 10 % 0.690476… ÷ 0.5 = 1.380952…, rounded up" in text
    assert "Credit amount 25.00 EUR fee 250.00 EUR × 10 %" in text
    # The week DST ends in is 169 hours long.
    assert "Window length 608,400 s real elapsed time from start to end (7 d 1 h)" in text
    assert "Total credit 175.00 EUR" in text  # 150.00 monthly + 25.00 for W41


def test_report_to_stdout_and_bad_arguments(loaded: Path) -> None:
    result = linkwatch(
        "report", "monthly", "--config", str(loaded), "--customer", "globex", "--month", "2026-10"
    )
    assert result.returncode == 0, result.stderr
    _, text = _read(result.stdout)
    assert "America/New_York" in text
    # globex-dc was never measured: no window of it is reported (nor in the ledger).
    assert "nothing measured" in text
    assert (
        "Not measured 2026-10 was not measured: the links of globex-monthly have not been "
        "measured yet"
    ) in text
    assert "No contract of this customer is measured in this period." in text
    for args, message in [
        (["--customer", "initech", "--month", "2026-10"], "--customer 'initech' is not a"),
        (["--customer", "acme", "--month", "2026-W41"], "--month '2026-W41' is not a month"),
        (["--customer", "acme", "--month", "2026-13"], "month must be 01 to 12"),
        (
            ["--customer", "acme", "--month", "2099-01"],
            "linkwatch: 2099-01 has not begun yet for ACME Corp & Sons: it begins "
            "2099-01-01 00:00 CET (Europe/Berlin)",
        ),
    ]:
        bad = linkwatch("report", "monthly", "--config", str(loaded), *args)
        assert bad.returncode == 2, bad.stderr
        assert message in bad.stderr
        assert "Traceback" not in bad.stderr


def test_objectives_and_burn_rate_are_shown() -> None:
    objective = ObjectiveResult(
        Objective("latency p95", Decimal("40"), Decimal(5)), 52.5, False, Decimal(5)
    )
    result: Any = SimpleNamespace(objectives=(objective,))
    assert _objectives(result) == (
        ObjectiveView("latency p95", "40 ms", "52.5 ms", "missed", "5 %"),
    )
    terms: Any = SimpleNamespace(target=Decimal("99.9"), unknown="exclude")
    result = SimpleNamespace(
        target=Fraction(999, 1000),
        budget_us=Fraction(3_600_000_000),
        budget_used=Fraction(1, 2),
        down_us=1_800_000_000,
        budget_remaining_us=Fraction(1_800_000_000),
        burn_rate=Fraction(7, 3),
        warnings=(50,),
    )
    item: Any = SimpleNamespace(result=result, terms=terms)
    rows = {row.label: row.value for row in _budget_rows(item)}
    assert rows["Budget remaining"] == "1,800 s"
    assert rows["Burn rate"] == "2.33…"  # truncated, never rounded up
    assert rows["Warnings reached"] == "50 %"


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
def test_chromium_prints_it_to_a_pdf(report: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(report, encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    profile = tmp_path / "profile"
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            *LAUNCH_ARGS,
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert pdf.exists(), "Chromium wrote no PDF"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    # The summary, then each contract from a new page: at least three A4 pages.
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert pages >= 3, f"{pages} pages"


# --- the list of reports ---------------------------------------------------------------------


async def test_reports_are_listed_from_monitoring_and_complete_only_once_the_ledger_closed(
    database: Database,
) -> None:
    from sla.backfill import Backfill
    from tests.portal_kit import NOW, minutes, running_portal, samples
    from tests.test_portal_noc import CONFIG, STEP

    began = datetime(2026, 10, 20, 8, 0, tzinfo=UTC)  # monitoring of Acme began mid-October

    def history(now: datetime) -> list[Sample]:
        times = minutes(began, now, STEP)
        return samples("acme-fra-1", times, rtt_ms=4.0) + samples("acme-ber-2", times, rtt_ms=4.0)

    async with running_portal(database, CONFIG, history=history) as kit:
        await kit.sign_in("alice")

        def listing(html: str) -> list[str]:
            found = re.findall(r"<strong>([A-Za-z]+ 2026)</strong><span class=\"muted\">([^<]+)",
                               html)  # fmt: skip
            return [f"{name}: {state.split(' · ')[1]}" for name, state in found]

        # Nothing computed yet: October's windows have no closed rows, so no month is
        # complete, and nothing before October is offered at all.
        assert listing(await kit.page("/reports")) == [
            "November 2026: in progress: provisional figures",
            "October 2026: provisional: late data may still change it",
        ]
        october = await kit.page("/reports/monthly?month=2026-10")
        assert 'class="chip chip-provisional">provisional</span>' in october.split("</header>")[0]

        # Once the ledger has every window's row, closed past its grace, October is
        # complete, and its report says final: the list and the report agree.
        assert await Backfill(kit.db, kit.config).run(NOW) > 0
        assert listing(await kit.page("/reports")) == [
            "November 2026: in progress: provisional figures",
            "October 2026: complete",
        ]
        october = await kit.page("/reports/monthly?month=2026-10")
        assert 'class="chip chip-final">final</span>' in october.split("</header>")[0]
        assert "2026-W42 was not measured: monitoring of acme-fra-gold began after it ended" in (
            unescape(october)
        )
        response = await kit.client.get("/reports/monthly?month=2026-09")
        assert response.status == 200  # asked for directly, September says what it lacks
        assert "nothing measured" in await response.text()
