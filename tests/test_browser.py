"""The portal in a real browser: Debian's headless Chromium, driven by Playwright, against
the real app on the embedded database, doing what a customer and a billing clerk do.

A customer signs in through the form, opens a link, sees its 90-day bar and its charts
and reads a day's figures from the bar; a billing clerk selects a closed credit, confirms
and approves it. Screenshots of every main page (also on a phone and in dark mode) are
saved under test-artifacts/screenshots for people to look at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from collector import Database
from collector.outbox import store_events
from kernel.domain import Event, EventKind, Outcome, Sample
from sla.ledger import TimeRange, list_rows, refresh_ledger
from tests.browser_kit import chromium, needs_browser, screenshot
from tests.portal_kit import (
    CONFIG_TEXT,
    NOW,
    PASSWORDS,
    PortalKit,
    minutes,
    portal_config,
    running_portal,
    samples,
    standard_history,
)

pytestmark = needs_browser

# acme-fra-1 probed every 5 minutes here, so 90 days of history stay a few thousand rows;
# acme-web-3 has one TCP probe: one chart (its response time), where acme-fra-1 has two.
CONFIG = portal_config(
    CONFIG_TEXT.replace(
        "{id: icmp, kind: icmp, host: 127.0.0.1, interval: 60s}",
        "{id: icmp, kind: icmp, host: 127.0.0.1, interval: 5m}",
    ).replace(
        "  - id: globex-nyc-1\n",
        "  - id: acme-web-3\n    customer: acme\n    description: Web shop\n    probes:\n"
        "      - {id: tcp, kind: tcp, host: 127.0.0.1, port: 443, interval: 5m}\n"
        "  - id: globex-nyc-1\n",
    )
)
# A two-hour outage nine days ago, in week 46: below the 99.5 % target, so a credit.
OUTAGE_START = NOW - timedelta(days=9, hours=5)
OUTAGE_END = OUTAGE_START + timedelta(hours=2)


def history(now: Any) -> list[Sample]:
    start = now - timedelta(days=90)
    step = timedelta(minutes=5)
    before = minutes(start, OUTAGE_START, step)
    after = minutes(OUTAGE_END, now - timedelta(hours=3), step)
    out = samples("acme-fra-1", before + after, rtt_ms=11.5, loss_pct=0.0, jitter_ms=0.4)
    out += samples(
        "acme-fra-1",
        minutes(OUTAGE_START, OUTAGE_END, step),
        Outcome.DOWN,
        loss_pct=100.0,
        error="no reply (5/5 lost)",
    )
    out += samples(
        "acme-web-3", minutes(now - timedelta(hours=3), now, step), probe_id="tcp", rtt_ms=3.2
    )
    # The last three hours (and the other links) as every portal test has them.
    return (
        out
        + [s for s in standard_history(now) if s.link_id != "acme-fra-1"]
        + samples(
            "acme-fra-1", minutes(now - timedelta(hours=3), now, step), rtt_ms=12.34, loss_pct=0.0
        )
    )


@pytest.fixture
async def kit(database: Database) -> AsyncIterator[PortalKit]:
    async with running_portal(database, CONFIG, history=history) as portal:
        now = portal.clock()
        await refresh_ledger(database, CONFIG, TimeRange(now - timedelta(days=60), now), now)
        yield portal


async def _deliveries(kit: PortalKit) -> None:
    """A sent, a held-back and a failed delivery, as the dispatcher leaves them."""
    now = kit.clock()
    down = now - timedelta(minutes=25)
    await store_events(
        kit.db,
        [
            Event(f"link-down:acme-ber-2:{down.isoformat()}", EventKind.LINK_DOWN, down, "acme",
                  "acme-ber-2", {"down_since": down.isoformat()}),
            Event("monitor-blind:1", EventKind.MONITOR_BLIND, now, None, payload={"count": 0}),
        ],
    )  # fmt: skip
    rows = [
        (f"link-down:acme-ber-2:{down.isoformat()}", "noc", "sent", 1, None, None),
        (f"link-down:acme-ber-2:{down.isoformat()}", "acme-it", "failed", 9,
         "HTTP 503: receiver unavailable", None),
        ("monitor-blind:1", "noc", "suppressed", 1, None, "route no longer configured"),
    ]  # fmt: skip
    async with kit.db.connection() as conn:
        for event_id, route, status, attempts, error, note in rows:
            await conn.execute(
                "INSERT INTO deliveries (event_id, route_id, channel_id, status, attempts,"
                " next_attempt_at, last_error, note, sent_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (event_id, route, route + "-hook", status, attempts, now, error, note,
                 now if status == "sent" else None, now),
            )  # fmt: skip


# How large each chart's axis labels are drawn on the screen, in CSS pixels: the SVG's
# font size times the scale its drawing is shown at.
CHART_TEXT_PX = """() => [...document.querySelectorAll('figure.chart svg.chart-svg')].map(svg => {
  const label = [...svg.querySelectorAll('text.ylabel')].find(t => t.getClientRects().length);
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  return Math.round(parseFloat(getComputedStyle(label).fontSize) * scale * 10) / 10;
})"""


async def _sign_in(page: Any, base: str, name: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#username", name)
    await page.fill("#password", PASSWORDS[name])
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")


async def test_a_customer_sees_the_bar_and_charts_and_billing_approves_a_credit(
    kit: PortalKit,
) -> None:
    base = str(kit.client.make_url("")).rstrip("/")
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        page = await context.new_page()
        await page.goto(f"{base}/login")
        await screenshot(page, "01-sign-in")

        await _sign_in(page, base, "alice")
        assert page.url.endswith("/links")
        board = await page.inner_text("table.links")
        assert "acme-fra-1" in board
        assert "acme-ber-2" in board
        assert "globex" not in (await page.content()).lower()
        await screenshot(page, "02-customer-links")

        await page.click("a.link-id[href='/links/acme-fra-1']")
        await page.wait_for_load_state("networkidle")
        days = page.locator(".day-bar-wide g.day")
        assert await days.count() == 90
        # The day of the outage is red (down more than 30 minutes), and its figures say
        # for how long.
        outage_day = OUTAGE_START.astimezone(CONFIG.customer("acme").tz).strftime("%a %d %b %Y")
        cell = page.locator(".day-bar-wide g.day", has=page.locator("title", has_text=outage_day))
        assert await cell.count() == 1
        assert "day-major" in (await cell.get_attribute("class") or "")
        figures = await cell.locator("title").text_content() or ""
        assert "down 2\u00a0h" in figures, figures
        assert await page.locator(".day-bar-wide g.day-up").count() >= 80
        charts = page.locator("figure.chart svg.chart-svg")
        assert await charts.count() >= 2  # round-trip time and loss
        assert await page.locator("figure.chart polyline.line").count() >= 2
        await cell.focus()  # a phone's tap or a keyboard's tab shows the same figures
        await screenshot(page, "03-customer-link-page")

        # A link with a single chart draws it as large as a link with two, not across
        # the whole page with its text twice the size.
        two = await page.evaluate(CHART_TEXT_PX)
        await page.goto(f"{base}/links/acme-web-3")
        (one,) = await page.evaluate(CHART_TEXT_PX)
        assert set(two) == {one}, (two, one)

        await page.goto(f"{base}/links/acme-fra-1?range=90d")
        assert await page.locator("figure.chart polyline.line").count() >= 2
        await page.goto(f"{base}/reports")
        await screenshot(page, "04-customer-reports")
        await page.goto(f"{base}/credits")
        await screenshot(page, "05-customer-credits")

        phone = await browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, color_scheme="dark"
        )
        mobile = await phone.new_page()
        await _sign_in(mobile, base, "alice")
        await mobile.goto(f"{base}/links/acme-fra-1")
        assert await mobile.locator(".day-bar-narrow g.day").count() == 90
        width = await mobile.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"the page scrolls sideways on a phone ({width} px)"
        await screenshot(mobile, "06-customer-link-page-phone-dark")
        on_phone = await mobile.evaluate(CHART_TEXT_PX)
        await mobile.goto(f"{base}/links/acme-web-3")
        assert await mobile.evaluate(CHART_TEXT_PX) == on_phone[:1]
        width = await mobile.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"the one-chart page scrolls sideways on a phone ({width} px)"
        await phone.close()
        await context.close()

        ops = await browser.new_context(viewport={"width": 1440, "height": 900})
        noc = await ops.new_page()
        await _sign_in(noc, base, "olga")
        assert noc.url.endswith("/noc")
        assert "acme-ber-2" in await noc.content()  # down for 25 minutes: an outage now
        await screenshot(noc, "07-noc-dashboard")
        await _deliveries(kit)
        await noc.goto(f"{base}/noc/notifications?status=all")
        assert "HTTP 503: receiver unavailable" in await noc.inner_text("table.deliveries")
        await screenshot(noc, "07b-noc-notifications")
        await ops.close()

        desk = await browser.new_context(viewport={"width": 1440, "height": 900})
        clerk = await desk.new_page()
        await _sign_in(clerk, base, "bill")
        assert clerk.url.endswith("/billing")
        await clerk.goto(f"{base}/billing?window=all&status=closed")
        await screenshot(clerk, "08-billing-ledger")
        (row,) = [
            r
            for r in await list_rows(kit.db, status="closed")
            if r.subject_id == "acme-fra-1" and r.credit_amount > 0
        ]
        assert (row.window_label, row.credit_amount) == ("2026-W46", Decimal("25.00"))
        await clerk.check(f"input[type=checkbox][name=id][value='{row.id}']")
        await clerk.click("button[name=action][value=approve]")
        await clerk.wait_for_load_state("networkidle")
        assert "/billing/confirm" in clerk.url
        confirmation = await clerk.inner_text("main")
        assert f"#{row.id}" in confirmation
        assert "25.00" in confirmation
        await screenshot(clerk, "09-billing-confirm")
        await clerk.click("form.confirm-form button[type=submit]")
        await clerk.wait_for_load_state("networkidle")
        await screenshot(clerk, "10-billing-approved")
        (approved,) = [r for r in await list_rows(kit.db) if r.id == row.id]
        assert approved.status == "approved"
        assert approved.approved_by == "bill"
        await desk.close()
