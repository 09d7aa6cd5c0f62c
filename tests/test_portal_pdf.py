"""The monthly SLA report as a PDF: downloaded from the portal (in a real browser too) and
written by `linkwatch report monthly --format pdf`, printed by headless Chromium from the
same HTML, then read back as text with poppler's `pdftotext`, as a customer's archive or a
search would read it.

Checked as a reader notices: the availability, target and credit, and every outage line,
are the HTML report's own; each page names the customer and the month and says "page i
of n"; an outage row is never cut in two by a page break and the outage table's header
comes again on the page it continues on; a customer gets only their own report; without
Chromium the answer says what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from collector import Database
from kernel.domain import Outcome, Sample
from tests.browser_kit import CHROMIUM, chromium, screenshot
from tests.helpers import linkwatch
from tests.portal_kit import (
    CONFIG_TEXT,
    PASSWORDS,
    PortalKit,
    minutes,
    portal_config,
    running_portal,
    samples,
    standard_history,
)

PDFTOTEXT = shutil.which("pdftotext")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.skipif(
        PDFTOTEXT is None, reason="pdftotext is not installed (apt-get install poppler-utils)"
    ),
]

# acme-ber-2 (monthly contract, 99.0 %) probed every 5 minutes, so November is a few
# thousand rows; it goes down for 15 minutes 36 times: a credit, and an outage table long
# enough to run over a page break.
CONFIG = portal_config(
    CONFIG_TEXT.replace(
        "{id: icmp, kind: icmp, host: 127.0.0.2, interval: 60s}",
        "{id: icmp, kind: icmp, host: 127.0.0.2, interval: 5m}",
    )
)
MONTH_START = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # 2026-11-01 00:00 in Berlin
OUTAGES = [MONTH_START + timedelta(hours=7 + 8 * n) for n in range(36)]
OUTAGE_LENGTH = timedelta(minutes=15)
STEP = timedelta(minutes=5)
# What the probe saw, long enough that each outage row is several lines tall: a page
# break that could cut rows would cut one of these.
LONG_ERROR = "no reply (5/5 lost); " + "; ".join(
    f"hop {n} 10.0.{n}.1 answered, then nothing" for n in range(1, 9)
)


def history(now: datetime) -> list[Sample]:
    out: list[Sample] = []
    at = MONTH_START
    for start in OUTAGES:
        out += samples("acme-ber-2", minutes(at, start, STEP), rtt_ms=8.0, loss_pct=0.0)
        out += samples(
            "acme-ber-2",
            minutes(start, start + OUTAGE_LENGTH, STEP),
            Outcome.DOWN,
            loss_pct=100.0,
            error=LONG_ERROR,
        )
        at = start + OUTAGE_LENGTH
    out += samples("acme-ber-2", minutes(at, now - timedelta(hours=3), STEP), rtt_ms=8.0)
    # The last three hours (and the other links) as every portal test has them.
    return out + standard_history(now)


@pytest.fixture
async def kit(database: Database) -> AsyncIterator[PortalKit]:
    async with running_portal(database, CONFIG, history=history) as portal:
        yield portal


# --- reading the two documents -------------------------------------------------------------


def pdf_pages(pdf: bytes) -> list[str]:
    """The PDF's text page by page, as `pdftotext` reads it, whitespace made single."""
    assert pdf.startswith(b"%PDF-"), pdf[:200]
    assert PDFTOTEXT is not None
    text = subprocess.run(
        [PDFTOTEXT, "-layout", "-", "-"], input=pdf, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    return [_words(page) for page in text.split("\f") if page.strip()]


def _words(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").replace("\u202f", " ").split())


class _Report(HTMLParser):
    """The HTML report's headline figures and the cells of every table row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: list[str] = []  # availability, target, credit of each window
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self._big = False
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "span" and ("class", "big") in attrs:
            self._big = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._big = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(_words(" ".join(self._cell)))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._big:
            self.figures.append(_words(data))
        if self._cell is not None:
            self._cell.append(data)


def read_html(html: str) -> _Report:
    report = _Report()
    report.feed(html)
    report.close()
    return report


def outage_rows(report: _Report) -> list[list[str]]:
    """The outage tables' rows: number, start, end, duration (with its seconds), seen by."""
    return [row for row in report.rows if len(row) == 5 and row[0].isdigit()]


def assert_matches(html: str, pdf: bytes, customer: str, month_name: str) -> list[str]:
    """The PDF says what the HTML says, with the running header and footer on every page."""
    report = read_html(html)
    pages = pdf_pages(pdf)
    whole = " ".join(pages)
    assert report.figures, "the HTML report shows no figures"
    for figure in report.figures:
        assert figure in whole, f"{figure!r} is not in the PDF"
    for n, page in enumerate(pages, start=1):
        assert customer in page, f"page {n} does not name {customer}"
        assert f"Service level report · {month_name}" in page, f"page {n}"
        assert f"page {n} of {len(pages)}" in page, f"page {n} has no page number"
    for number, start, end, duration, _seen_by in outage_rows(report):
        on = [
            n
            for n, page in enumerate(pages, start=1)
            if re.search(rf"(^| ){number} {re.escape(start)} {re.escape(end)} ", page)
        ]
        assert len(on) == 1, f"outage {number} ({start}) found on pages {on}"
        assert duration.split()[0] in pages[on[0] - 1]
    # A row is never cut by a page break: where the outage table goes on, its header
    # comes again and is followed by a whole row, not the rest of one.
    for n, page in enumerate(pages, start=1):
        for after in re.findall(r"# Start End Duration Seen by (\S+ \S+)", page):
            assert re.fullmatch(r"\d+ \d{4}-\d\d-\d\d", after), f"page {n}: {after!r}"
    return pages


# --- the portal ----------------------------------------------------------------------------


async def test_a_customer_downloads_their_report_as_a_pdf_that_says_what_the_page_says(
    kit: PortalKit,
) -> None:
    await kit.login("alice")
    listing = await kit.page("/reports")
    assert 'href="/reports/monthly.pdf?customer=acme&amp;month=2026-11"' in listing
    assert "Download PDF" in listing

    html = await kit.page("/reports/monthly?customer=acme&month=2026-11")
    response = await kit.client.get("/reports/monthly.pdf?customer=acme&month=2026-11")
    assert response.status == 200, await response.text()
    assert response.content_type == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="sla-report-acme-2026-11.pdf"'
    )
    pdf = await response.read()

    pages = assert_matches(html, pdf, "Acme Corp", "November 2026")
    assert len(outage_rows(read_html(html))) == 37  # 36, and the one running now
    assert len(pages) >= 3
    # The outage table runs over a page: its header comes again on the next one.
    headed = [page for page in pages if "# Start End Duration Seen by" in page]
    assert len(headed) >= 2
    # Which month, from when to when, on every page too.
    period = re.search(r"Period (2026-11-01 00:00\S* CET to 2026-12-01 00:00\S* CET) ", pages[0])
    assert period is not None
    assert all(period.group(1) in page for page in pages)


async def test_a_customer_never_gets_another_customers_pdf(kit: PortalKit) -> None:
    await kit.login("alice")
    for path in (
        "/reports/monthly.pdf?customer=globex&month=2026-11",
        "/reports/monthly.pdf?customer=nobody&month=2026-11",
    ):
        response = await kit.client.get(path)
        assert response.status == 404
        body = await response.text()
        assert "Globex" not in body
        assert not body.startswith("%PDF")
    # Staff choose any customer's.
    kit.client.session.cookie_jar.clear()
    await kit.login("bill")
    response = await kit.client.get("/reports/monthly.pdf?customer=globex&month=2026-11")
    assert response.status == 200
    pages = pdf_pages(await response.read())
    assert all("Globex Inc" in page for page in pages)
    assert not any("Acme" in page for page in pages)


async def test_bad_requests_say_what_is_wrong(kit: PortalKit) -> None:
    await kit.login("alice")
    for path, status, message in (
        ("/reports/monthly.pdf?customer=acme", 400, "month is required"),
        ("/reports/monthly.pdf?customer=acme&month=november", 400, "2026-11"),
        ("/reports/monthly.pdf?customer=acme&month=2027-01", 404, "has not begun yet"),
    ):
        response = await kit.client.get(path)
        assert response.status == status, path
        assert message in await response.text(), path


async def test_without_chromium_the_portal_says_what_to_install(
    kit: PortalKit, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await kit.login("alice")
    monkeypatch.setenv("PATH", str(tmp_path))  # nowhere to find a browser
    response = await kit.client.get("/reports/monthly.pdf?customer=acme&month=2026-11")
    assert response.status == 503
    body = await response.text()
    assert "apt-get install chromium" in body
    assert "Traceback" not in body
    # Another customer's is still a 404, not a hint that it exists.
    response = await kit.client.get("/reports/monthly.pdf?customer=globex&month=2026-11")
    assert response.status == 404


async def test_the_download_button_in_a_real_browser(kit: PortalKit, tmp_path: Path) -> None:
    base = str(kit.client.make_url("")).rstrip("/")
    async with chromium() as browser:
        for name, viewport in (("desktop", (1366, 900)), ("phone", (390, 844))):
            context = await browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True
            )
            page = await context.new_page()
            await page.goto(f"{base}/login")
            await page.fill("#username", "alice")
            await page.fill("#password", PASSWORDS["alice"])
            await page.click("button[type=submit]")
            await page.wait_for_load_state("networkidle")
            await page.goto(f"{base}/reports")
            button = page.get_by_role("link", name="Download the November 2026 report as PDF")
            assert await button.is_visible()
            assert await button.inner_text() == "Download PDF"
            await _save(page, tmp_path, f"pdf-reports-{name}")
            async with page.expect_download() as waiting:
                await button.click()
            download = await waiting.value
            assert download.suggested_filename == "sla-report-acme-2026-11.pdf"
            saved = tmp_path / f"{name}.pdf"
            await download.save_as(saved)
            pages = pdf_pages(saved.read_bytes())
            assert "Acme Corp" in pages[0]
            assert f"page 1 of {len(pages)}" in pages[0]
            await context.close()


async def _save(page: object, tmp_path: Path, name: str) -> None:
    """A screenshot under the test's directory, and where LINKWATCH_SCREENSHOTS says."""
    _copy(await screenshot(page, name), tmp_path)


def _copy(shot: Path, tmp_path: Path) -> None:
    shutil.copy(shot, tmp_path / shot.name)
    wanted = os.environ.get("LINKWATCH_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(wanted) / shot.name)


# --- the command line ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(pg_base_dir: Path) -> Path:
    """A config with its own embedded database, November 2026 imported: three outages."""
    directory = Path(tempfile.mkdtemp(dir=pg_base_dir))
    directory.chmod(0o711)
    config = directory / "linkwatch.yaml"
    config.write_text(
        f"""\
data_dir: {directory}
customers:
  - {{id: acme, name: "ACME \\"Corp\\" & Sons", timezone: Europe/Berlin}}
  - {{id: globex, name: Globex, timezone: America/New_York}}
links:
  - {{id: acme-hq, customer: acme,
      probes: [{{id: icmp, kind: icmp, host: 127.0.0.1, interval: 1m}}]}}
  - {{id: globex-dc, customer: globex,
      probes: [{{id: icmp, kind: icmp, host: 127.0.0.3, interval: 1m}}]}}
contracts:
  - {{id: acme-monthly, customer: acme, links: [acme-hq], target: 99.9, window: month,
      fee: "1000.00", currency: EUR, credit: {{step: 0.5, per_step: 10, cap: 30}}}}
  - {{id: globex-monthly, customer: globex, links: [globex-dc], target: 99.9,
      window: month, fee: "100.00", currency: USD}}
"""
    )
    downs = [
        (MONTH_START + timedelta(days=d, hours=9), MONTH_START + timedelta(days=d, hours=10))
        for d in (2, 9, 16)
    ]
    rows = ["time,link,probe,outcome,rtt_ms,loss_pct,error"]
    for at in minutes(MONTH_START, MONTH_START + timedelta(days=20)):
        down = any(start <= at < end for start, end in downs)
        rows.append(
            f"{at.isoformat()},acme-hq,icmp,"
            + ("down,,100,no reply (5/5 lost)" if down else "up,4.2,0,")
        )
    data = directory / "november.csv"
    data.write_text("\n".join(rows) + "\n")
    result = linkwatch("import", "samples", "--config", str(config), str(data), timeout=300)
    assert result.returncode == 0, result.stderr
    return config


def test_the_command_writes_the_pdf_of_the_html_report(loaded: Path, tmp_path: Path) -> None:
    common = ("report", "monthly", "--config", str(loaded), "--customer", "acme")
    html_file, pdf_file = tmp_path / "r.html", tmp_path / "r.pdf"
    result = linkwatch(*common, "--month", "2026-11", "--output", str(html_file))
    assert result.returncode == 0, result.stderr
    result = linkwatch(*common, "--month", "2026-11", "--format", "pdf", "--output", str(pdf_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    html = html_file.read_text(encoding="utf-8")
    assert len(outage_rows(read_html(html))) == 3
    # The name is printed as written, quotes and ampersand too, on every page.
    assert_matches(html, pdf_file.read_bytes(), 'ACME "Corp" & Sons', "November 2026")


def test_the_command_refuses_clearly(loaded: Path, tmp_path: Path) -> None:
    common = ("report", "monthly", "--config", str(loaded), "--customer", "acme")
    # No Chromium on the way: what to install, no traceback, nothing written.
    env = {**os.environ, "PATH": str(tmp_path)}
    out = tmp_path / "r.pdf"
    result = linkwatch(
        *common, "--month", "2026-11", "--format", "pdf", "--output", str(out), env=env
    )
    assert result.returncode == 1
    assert "apt-get install chromium" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()

    result = linkwatch(*common, "--month", "2026-11", "--format", "docx")
    assert result.returncode == 2
    assert "invalid choice: 'docx'" in result.stderr

    result = linkwatch(*common, "--month", "2099-01", "--format", "pdf", "-o", str(out))
    assert result.returncode != 0
    assert "has not begun yet" in result.stderr
    assert "Traceback" not in result.stderr
