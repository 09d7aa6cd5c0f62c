"""A customer's home page as an overview: per link the running week and month against
the target (met, at risk, missed, the budget left), the 90-day bar and credits owed, and
a summary above the list; only the customer's own links and figures; a few reads however
many links there are; and how it looks in Chromium on a desktop and a phone.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from collector import Database
from kernel.domain import Outcome, Sample
from sla.ledger import TimeRange, refresh_ledger
from tests.browser_kit import chromium, needs_browser
from tests.helpers import FAST_HASHER, board_row, element, element_by_id, elements, text_of
from tests.portal_kit import PASSWORDS, PortalKit, minutes, portal_config, running_portal
from tests.portal_kit import samples as make_samples


@pytest.fixture
async def kit(database: Database) -> AsyncIterator[PortalKit]:
    async with running_portal(database) as portal:
        now = portal.clock()
        await refresh_ledger(database, portal.config, TimeRange(now - timedelta(days=7), now), now)
        yield portal


def link_ids_in_order(html: str) -> list[str]:
    return re.findall(r'<a class="link-id" href="/links/([^"]+)">', html)


def overview_row(html: str, link_id: str) -> str:
    return board_row(html, link_id)


def cell_html(row: str, label: str) -> str:
    start = row.index(f'<td data-label="{label}"')
    return row[start : row.index("</td>", start)]


def link_page_cards(html: str) -> dict[str, tuple[str, str]]:
    """Heading ("This week") -> (availability, budget left) of the link page's first
    contract's cards."""
    out = {}
    for card in elements(html, "article", "sla-card"):
        heading = text_of(card[card.index("<h3") : card.index("</h3>")]).split(" 20")[0]
        availability = text_of(element(card, "span", "sla-availability"))
        line = element(card, "div", "budget-line")
        left = text_of(line[line.index("<strong>") : line.index("</strong>")])
        out.setdefault(heading, (availability, left))
    return out


# --- what a customer reads ---------------------------------------------------------------------


async def test_each_link_shows_its_week_month_bar_and_credits_as_its_own_page_does(
    kit: PortalKit,
) -> None:
    await kit.sign_in("alice")
    html = await kit.page("/links")
    assert link_ids_in_order(html) == ["acme-ber-2", "acme-fra-1"]
    for link_id in ("acme-ber-2", "acme-fra-1"):
        row = overview_row(html, link_id)
        cards = link_page_cards(await kit.page(f"/links/{link_id}"))
        for label, heading in (("This week", "This week"), ("This month", "This month")):
            mine = cell_html(row, label)
            shown = text_of(element(mine, "strong", "avail-figure"))
            left = text_of(element(mine, "span", "budget-left"))
            assert (shown, left) == cards[heading], (link_id, label)
        assert row.count('<g class="day day-') == 90

    down = overview_row(html, "acme-ber-2")
    # Down for the last 25 minutes of three hours: below 99 % so far, with most of the
    # month's budget still left, so not yet missed.
    assert "Down" in text_of(cell_html(down, "Status"))
    assert "At risk" in text_of(cell_html(down, "This month"))
    assert "Met" in text_of(cell_html(overview_row(html, "acme-fra-1"), "This week"))
    # Today's cell of the bar says what the link page's bar says for today.
    assert "today so far" in cell_html(down, "90 days")

    # Credits still owed, per link and in total, as the credits page counts them.
    facts = text_of(element(await kit.page("/credits"), "dl", "facts"))
    pending = facts.split("Being measured or awaiting approval ")[1]
    assert pending == "27.00 EUR"  # 30 % (the cap) of the 90.00 EUR month
    assert (
        text_of(element_by_id(html, "div", "owed-summary"))
        == f"Credits owed {pending} Credits by window →"
    )
    assert text_of(cell_html(down, "Owed")) == pending
    assert text_of(cell_html(overview_row(html, "acme-fra-1"), "Owed")) == "none"

    summary = text_of(element(html, "section", "home-summary"))
    assert "2 links 1 down 1 up" in summary
    assert "1 of 2 on target 1 at risk" in summary
    assert "Credits by window" in summary


async def test_a_customer_never_sees_another_customers_links_or_figures(kit: PortalKit) -> None:
    await kit.sign_in("gus")
    html = await kit.page("/links")
    fragment = await kit.page("/partial/links")
    for page in (html, fragment):
        assert "acme" not in page.lower()
        assert "EUR" not in page
        assert "Frankfurt" not in page
    assert link_ids_in_order(html) == ["globex-nyc-1", "globex-bos-2"]
    await kit.sign_out()
    await kit.sign_in("alice")
    html = await kit.page("/links")
    assert "globex" not in html.lower()
    assert "USD" not in html


async def test_staff_keep_the_plain_board_with_its_filters(kit: PortalKit) -> None:
    await kit.sign_in("olga")
    html = await kit.page("/links?customer=acme")
    assert link_ids_in_order(html) == ["acme-ber-2", "acme-fra-1"]
    assert "home-summary" not in html
    assert 'data-label="This week"' not in html


# --- a bank with 300 branches ------------------------------------------------------------------

BRANCHES = 300


def bank_config_text() -> str:
    users = [
        f'  - {{name: banker, role: customer, customer: bank, password_hash: "'
        f'{FAST_HASHER.hash("banker-pw-1234")}"}}',
        f'  - {{name: alice, role: customer, customer: acme, password_hash: "'
        f'{FAST_HASHER.hash(PASSWORDS["alice"])}"}}',
    ]
    links = []
    for i in range(BRANCHES):
        links.append(
            f"  - {{id: bank-{i:03d}, customer: bank, description: Branch {i},"
            f" probes: [{{id: icmp, kind: icmp, host: 127.0.{i // 250}.{i % 250 + 1},"
            f" interval: 5m}}]}}"
        )
    links.append(
        "  - {id: acme-fra-1, customer: acme, description: Frankfurt,"
        " probes: [{id: icmp, kind: icmp, host: 127.0.9.1, interval: 5m}]}"
    )
    half = BRANCHES // 2
    weekly = ", ".join(f"bank-{i:03d}" for i in range(half))
    monthly = ", ".join(f"bank-{i:03d}" for i in range(half, BRANCHES))
    return "\n".join(
        [
            "customers:",
            "  - {id: bank, name: Big Bank, timezone: Europe/Berlin}",
            "  - {id: acme, name: Acme Corp, timezone: Europe/Berlin}",
            "links:",
            *links,
            "contracts:",
            f"  - {{id: bank-week, customer: bank, links: [{weekly}], target: 99.5,"
            ' window: week, fee: "100.00", currency: EUR}',
            f"  - {{id: bank-month, customer: bank, links: [{monthly}], target: 99.0,"
            ' window: month, fee: "300.00", currency: EUR}',
            "  - {id: acme-gold, customer: acme, links: [acme-fra-1], target: 99.5,"
            ' window: week, fee: "250.00", currency: EUR}',
            "users:",
            *users,
        ]
    )


def bank_history(now: Any) -> list[Sample]:
    times = minutes(now - timedelta(hours=1), now, timedelta(minutes=5))
    out: list[Sample] = []
    late = minutes(now - timedelta(minutes=20), now, timedelta(minutes=5))
    for i in range(BRANCHES):
        mine = [t for t in times if t not in late] if i == 7 else times
        out += make_samples(f"bank-{i:03d}", mine, rtt_ms=9.0, loss_pct=0.0)
    out += make_samples("acme-fra-1", times, rtt_ms=9.0, loss_pct=0.0)
    out += make_samples("bank-007", late, Outcome.DOWN, loss_pct=100.0, error="no reply")
    return out


class QueryCount:
    """Statements the app sends to PostgreSQL, counted at psycopg's cursor."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for cls in (psycopg.AsyncCursor, psycopg.AsyncServerCursor):
            original = cls.execute

            def counting(self_: Any, *args: Any, _original: Any = original, **kw: Any) -> Any:
                self.count += 1
                return _original(self_, *args, **kw)

            monkeypatch.setattr(cls, "execute", counting)


async def _statements(kit: PortalKit, counter: QueryCount, path: str) -> tuple[int, str]:
    before = counter.count
    html = await kit.page(path)
    return counter.count - before, html


async def test_300_links_render_with_as_many_reads_as_one(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = portal_config(bank_config_text())
    async with running_portal(database, config, history=bank_history) as kit:
        counter = QueryCount(monkeypatch)
        await kit.sign_in("alice")
        small, _ = await _statements(kit, counter, "/links")
        await kit.sign_out()
        await kit.login("banker", "banker-pw-1234")
        big, html = await _statements(kit, counter, "/links")
        print(f"statements for /links: 1 link {small}, 300 links {big}")
        assert big <= small + 2, f"300 links took {big} statements, one link {small}"
        assert big <= 50, f"300 links took {big} statements"
        assert "300 links" in text_of(element(html, "section", "home-summary"))
        assert "1 down" in text_of(element(html, "section", "home-summary"))
        # Paging stays the board's: 100 per page, the down branch first.
        ids = link_ids_in_order(html)
        assert len(ids) == 100
        assert ids[0] == "bank-007"
        second, page2 = await _statements(kit, counter, "/links?page=3")
        assert second <= big
        assert link_ids_in_order(page2)[-1] == "bank-299"
        assert page2.count('data-label="This month"') == 100
        assert "acme" not in html.lower()


# --- in a browser --------------------------------------------------------------------------------


def _shots(tmp_path: Path) -> list[Path]:
    dirs = [tmp_path]
    if os.environ.get("LINKWATCH_SCREENSHOTS"):
        dirs.append(Path(os.environ["LINKWATCH_SCREENSHOTS"]))
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


@needs_browser
async def test_the_overview_fits_a_desktop_and_a_phone_in_both_themes(
    kit: PortalKit, tmp_path: Path
) -> None:
    base = str(kit.client.make_url("")).rstrip("/")
    dirs = _shots(tmp_path)
    async with chromium() as browser:
        for width, height, scheme in ((1366, 900, "light"), (390, 844, "dark")):
            context = await browser.new_context(
                viewport={"width": width, "height": height},
                is_mobile=width < 500,
                color_scheme=scheme,
            )
            page = await context.new_page()
            await page.goto(f"{base}/login")
            await page.fill("#username", "alice")
            await page.fill("#password", PASSWORDS["alice"])
            await page.click("button[type=submit]")
            await page.wait_for_load_state("networkidle")
            assert page.url.endswith("/links")
            assert await page.locator("table.overview tbody tr").count() == 2
            assert await page.locator(".home-summary .tile").count() >= 3
            strip = page.locator("table.overview tr:has(a[href='/links/acme-fra-1']) svg.strip")
            box = await strip.first.bounding_box()
            assert box is not None
            assert box["width"] > 100, box
            scroll = await page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"the page scrolls sideways at {width} px ({scroll} px)"
            first = dirs[0] / f"home-{width}x{height}-{scheme}.png"
            await page.screenshot(path=str(first), full_page=True)
            for d in dirs[1:]:
                shutil.copy(first, d / first.name)
            await context.close()
