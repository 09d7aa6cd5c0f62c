"""Every page of the portal on a phone (390 x 844) and on a laptop (1366 x 900), light and
dark, in Debian's headless Chromium, as each role sees it.

The pages come from the app's own router: every GET route that answers HTML to the role
is visited, its path parameters filled from seeded data, so a page added later is covered
without touching this file (a route whose parameter has no seeded value fails here, with
its name). At 390 px no page may scroll sideways (a table may scroll inside its own box),
no chart text may stick out of its chart or run into another, and the navigation stays a
single bar until opened; no button is left to the browser's own look and no two panels
touch. A screenshot of each page at each size and scheme is saved under
the test's temporary directory and, when LINKWATCH_SCREENSHOTS names a directory, there.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from collector import Database
from collector.acknowledgements import outage_key
from collector.attributions import attribute
from collector.incident_reports import OutageRef, open_incident
from collector.maintenance_work import create_window, resolve_scope
from collector.outbox import store_events
from collector.recurring import create_series
from kernel.domain import Event, EventKind, Sample
from kernel.recurrence import MaintenanceSeries
from sla.ledger import TimeRange, list_rows, refresh_ledger
from tests.browser_kit import chromium, needs_browser
from tests.portal_kit import PASSWORDS, PortalKit, running_portal, standard_history

pytestmark = needs_browser

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}
NAV_MAX_PX = 60  # the closed navigation bar on a phone: one row, not a stack of links
ROLES = ("alice", "olga", "bill", "ada")  # customer acme, ops, billing, admin
SKIPPED_PREFIXES = ("/api/", "/partial/", "/static")  # the API, fragments, files
# Pages whose useful form needs a query (without it they answer a refusal page, which is
# visited as well through the plain path).
QUERIES: Mapping[str, tuple[str, ...]] = {
    "/reports": ("", "customer=acme"),
    "/reports/monthly": ("customer=acme&month=2026-11",),
    "/credits": ("", "customer=acme"),
    "/billing": ("", "window=all&status=all"),
    "/billing/confirm": ("action=approve&id={row_id}",),
    "/links/{link_id}": ("", "range=90d"),
    "/noc/notifications": ("status=all",),
}
# Pages no route lists: what a refused or missing address shows.
EXTRA = ("/links/no-such-link",)


def history(now: datetime) -> list[Sample]:
    """The portal tests' standard history, with acme-ber-2's round trips at 180 ms before
    its outage, so its chart's axis reads up to "200 ms" next to a loss chart's "0 %"."""
    return [
        replace(s, rtt_ms=180.0) if s.link_id == "acme-ber-2" and s.rtt_ms is not None else s
        for s in standard_history(now)
    ]


@dataclass
class World:
    kit: PortalKit
    base: str
    params: dict[str, str]  # route parameter -> value


async def _seed(kit: PortalKit) -> dict[str, str]:
    """Something on every page: a ledger, an outage acknowledged, attributed and told as
    an incident, maintenance one-off and recurring, deliveries sent and failed."""
    db, now = kit.db, kit.clock()
    await refresh_ledger(db, kit.config, TimeRange(now - timedelta(days=40), now), now)
    row = next(r for r in await list_rows(db) if r.customer_id == "acme" and r.kind == "window")
    outage = now - timedelta(minutes=25)  # acme-ber-2 is down since (standard_history)
    await attribute(
        db, "acme-ber-2", outage, reason="CPE powered off by the customer's electrician",
        by="olga", at=now, ends_at=outage + timedelta(minutes=5),
    )  # fmt: skip
    await open_incident(
        db, [OutageRef("acme-ber-2", outage)], title="Fibre cut between Berlin PoPs",
        by="olga", at=now, customers={"acme-ber-2": "acme"},
    )  # fmt: skip
    window = await create_window(
        db,
        resolve_scope(kit.config, link_ids=["acme-fra-1", "acme-ber-2"]),
        starts_at=now + timedelta(days=3),
        ends_at=now + timedelta(days=3, hours=2),
        description="Line card swap in the Frankfurt core router [CHG-20451]",
        by="olga",
        now=now,
    )
    await create_series(
        db,
        MaintenanceSeries(
            id="fra-patching", description="Frankfurt PoP software update", reference="CHG-77",
            link_ids=("acme-fra-1",), customer_ids=(), start=datetime(2026, 12, 1, 2, 0),
            zone="Europe/Berlin", duration=timedelta(hours=2), rule="FREQ=MONTHLY;BYDAY=1TU",
            lead=timedelta(days=14), source="portal", created_by="olga",
        ),
        now=now,
    )  # fmt: skip
    event = f"link-down:acme-ber-2:{outage.isoformat()}"
    await store_events(
        db,
        [Event(event, EventKind.LINK_DOWN, outage, "acme", "acme-ber-2",
               {"down_since": outage.isoformat()})],
    )  # fmt: skip
    async with db.connection() as conn:
        for route, status, error in (
            ("noc", "sent", None),
            ("acme-it", "failed", "HTTP 503: receiver unavailable at https://hooks.example/a"),
        ):
            await conn.execute(
                "INSERT INTO deliveries (event_id, route_id, channel_id, status, attempts,"
                " next_attempt_at, last_error, sent_at, updated_at)"
                " VALUES (%s, %s, %s, %s, 1, %s, %s, %s, %s)",
                (event, route, route + "-hook", status, now, error,
                 now if status == "sent" else None, now),
            )  # fmt: skip
    return {
        "link_id": "acme-ber-2",
        "start": outage_key(outage),
        "maintenance_id": window.id,
        "row_id": str(row.id),
    }


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with running_portal(database, history=history) as kit:
        params = await _seed(kit)
        yield World(kit, str(kit.client.make_url("")).rstrip("/"), params)


def page_paths(app: web.Application, params: Mapping[str, str]) -> dict[str, str]:
    """Every GET address the router serves, parameters filled, with the queries above:
    address -> a name for its screenshots (from the route, so the same every run)."""
    paths: dict[str, str] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("path") or info.get("formatter")
        if route.method != "GET" or template is None or template.startswith(SKIPPED_PREFIXES):
            continue
        names = re.findall(r"\{(\w+)\}", template)
        missing = [name for name in names if name not in params]
        assert not missing, f"{template}: seed a value for {missing} in this test"
        for query in QUERIES.get(template, ("",)):
            path = template.format(**params) + ("?" + query.format(**params) if query else "")
            paths.setdefault(path, _name(template + "?" + query))
    return {**paths, **{path: _name(path) for path in EXTRA}}


def _name(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "-", address).strip("-") or "home"


def _save_dirs(tmp_path: Path) -> list[Path]:
    dirs = [tmp_path / "screenshots"]
    if os.environ.get("LINKWATCH_SCREENSHOTS"):
        dirs.append(Path(os.environ["LINKWATCH_SCREENSHOTS"]))
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)
    return dirs


async def _screenshot(page: Any, dirs: list[Path], name: str) -> None:
    image = await page.screenshot(full_page=True)
    for directory in dirs:
        (directory / f"{name}.png").write_bytes(image)


# Chart texts that leave their drawing (clipped: "200 ms" read as "00 ms") or touch
# another text of the same drawing ("0 %" running into the first day's label).
CHART_TEXT_PROBLEMS = """() => {
  const problems = [];
  for (const svg of document.querySelectorAll('svg.chart-svg')) {
    const box = svg.viewBox.baseVal;
    const texts = [...svg.querySelectorAll('text.ylabel, text.xlabel')]
      .filter(t => t.getClientRects().length);
    const boxes = texts.map(t => t.getBBox());
    texts.forEach((t, i) => {
      const b = boxes[i];
      if (b.x < box.x - 0.5 || b.x + b.width > box.x + box.width + 0.5)
        problems.push(`"${t.textContent}" sticks out of its chart`);
      for (let j = i + 1; j < texts.length; j++) {
        const o = boxes[j];
        if (b.x < o.x + o.width && o.x < b.x + b.width && b.y < o.y + o.height
            && o.y < b.y + b.height)
          problems.push(`"${t.textContent}" runs into "${texts[j].textContent}"`);
      }
    });
  }
  return problems;
}"""

# On a phone each table row is a card: a label column, then the cell's content. Anything
# of a cell that starts in the label column (a flag under its figure, the second half of
# a date range) reads as if it were a label.
CARD_CELLS_IN_LABEL_COLUMN = """() => {
  const problems = [];
  for (const td of document.querySelectorAll('table.grid td[data-label]')) {
    if (!td.dataset.label || !td.getClientRects().length) continue;
    let column = null;  // where the cell's first content starts: the rest must too
    for (const node of td.childNodes) {
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const rect of range.getClientRects()) {
        if (rect.width === 0) continue;
        column ??= rect.left;
        if (rect.left < column - 1)
          problems.push(`${td.dataset.label}: "${node.textContent.trim()}"`);
      }
    }
  }
  return [...new Set(problems)];
}"""

# Dates, times with their zone and the ends of a range are read whole: one that breaks
# across lines ("2026-" / "12-14") is named.
BROKEN_DATES = """() => [...document.querySelectorAll('time, .date')]
  .filter(e => e.getClientRects().length > 1)
  .slice(0, 8)
  .map(e => e.textContent.trim())"""

# Buttons left to the browser's own look: a grey bevel among the portal's flat buttons.
UNSTYLED_BUTTONS = """() => [...document.querySelectorAll('button')]
  .filter(b => b.getClientRects().length && getComputedStyle(b).borderTopStyle === 'outset')
  .map(b => b.textContent.trim())"""

# Panels (cards, a page's facts) one under another with no room between them.
TOUCHING_PANELS = """() => {
  const panels = [...document.querySelectorAll('.card, dl.facts')]
    .filter(p => p.getClientRects().length);
  const name = p => `${p.tagName.toLowerCase()}.${[...p.classList].join('.')}`;
  const problems = [];
  for (const upper of panels) {
    for (const lower of panels) {
      if (upper === lower || upper.contains(lower) || lower.contains(upper)) continue;
      const a = upper.getBoundingClientRect(), b = lower.getBoundingClientRect();
      const gap = b.top - a.bottom;
      if (a.left < b.right && b.left < a.right && gap >= 0 && gap < 8)
        problems.push(`${name(upper)} and ${name(lower)} are ${gap} px apart`);
    }
  }
  return problems;
}"""

# Elements wider than the viewport, to name the culprit when the page scrolls sideways.
WIDE_ELEMENTS = """(width) => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > width + 1)
  .filter(e => !e.closest('.scroll-x, [data-scrolls]'))
  .slice(0, 8)
  .map(e => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}`
            + ` right=${Math.round(e.getBoundingClientRect().right)}`)"""


async def _sign_in(context: Any, base: str, role: str) -> Any:
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("#username", role)
    await page.fill("#password", PASSWORDS[role])
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
    return page


async def _served(context: Any, base: str, path: str) -> bool:
    """Whether the viewer is served an HTML page at `path`: not one kept from them (404),
    not sent elsewhere, not a file such as the CSV export or the calendar feed. A page
    that refuses an action (the billing desk's confirmation of a row still open) counts:
    it is what the viewer sees there."""
    response = await context.request.get(base + path, max_redirects=0)
    kind = response.headers.get("content-type", "")
    shown = response.status < 300 or (response.status >= 400 and response.status != 404)
    return (shown or path in EXTRA) and kind.startswith("text/html")


async def _check_phone_navigation(page: Any, base: str, dirs: list[Path], name: str) -> None:
    await page.goto(base + "/links")
    bar = await page.locator("header.topbar").bounding_box()
    assert bar is not None
    assert bar["height"] <= NAV_MAX_PX, f"the closed bar is {bar['height']} px high"
    links = page.locator("nav.mainnav a")
    assert not await links.first.is_visible()
    await page.get_by_text("Menu", exact=True).click()
    assert await links.first.is_visible()
    assert await page.get_by_role("button", name="Sign out").is_visible()
    await _screenshot(page, dirs, name)
    await page.get_by_role("link", name="Reports").click()
    await page.wait_for_load_state("networkidle")
    assert page.url.endswith("/reports")
    assert not await links.first.is_visible()  # a new page starts with the menu closed


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("role", ROLES)
async def test_every_page_fits_a_phone(
    world: World, role: str, scheme: str, tmp_path: Path
) -> None:
    dirs = _save_dirs(tmp_path)
    paths = page_paths(world.kit.client.app, world.params)
    async with chromium() as browser:
        phone_context = await browser.new_context(
            viewport=PHONE, is_mobile=True, has_touch=True, color_scheme=scheme
        )
        laptop_context = await browser.new_context(viewport=LAPTOP, color_scheme=scheme)
        phone = await _sign_in(phone_context, world.base, role)
        laptop = await _sign_in(laptop_context, world.base, role)
        await _check_phone_navigation(phone, world.base, dirs, f"{role}-menu-open-390-{scheme}")
        visited = []
        for path, page_name in paths.items():
            if not await _served(phone_context, world.base, path):
                continue
            visited.append(path)
            name = f"{role}-{page_name}"
            await phone.goto(world.base + path)
            width = await phone.evaluate("document.scrollingElement.scrollWidth")
            wide = await phone.evaluate(WIDE_ELEMENTS, PHONE["width"])
            assert width <= PHONE["width"], f"{path} as {role} scrolls sideways: {width} px {wide}"
            assert await phone.evaluate(CHART_TEXT_PROBLEMS) == [], path
            assert await phone.evaluate(CARD_CELLS_IN_LABEL_COLUMN) == [], path
            assert await phone.evaluate(BROKEN_DATES) == [], path
            await _screenshot(phone, dirs, f"{name}-390-{scheme}")
            await laptop.goto(world.base + path)
            assert await laptop.evaluate(CHART_TEXT_PROBLEMS) == [], path
            assert await laptop.evaluate(UNSTYLED_BUTTONS) == [], path
            assert await laptop.evaluate(TOUCHING_PANELS) == [], path
            await _screenshot(laptop, dirs, f"{name}-1366-{scheme}")
        # The report is a document of its own: on a phone there is a way back to the list.
        await phone.goto(world.base + "/reports/monthly?customer=acme&month=2026-11")
        await phone.get_by_role("link", name="All reports").click()
        await phone.wait_for_load_state("networkidle")
        assert phone.url.endswith("/reports?customer=acme")
        assert await phone.get_by_role("link", name=re.compile("^November 2026")).count() == 1
        # The pages every role has, and the ones only some roles have, were all looked at.
        assert {"/links", "/reports", "/maintenance", "/account"} <= set(visited)
        if role in ("olga", "ada"):
            assert "/noc" in visited
        if role in ("bill", "ada"):
            assert "/billing" in visited
        await phone_context.close()
        await laptop_context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_sign_in_page_fits_a_phone(world: World, scheme: str, tmp_path: Path) -> None:
    dirs = _save_dirs(tmp_path)
    async with chromium() as browser:
        for size, viewport in (("390", PHONE), ("1366", LAPTOP)):
            context = await browser.new_context(viewport=viewport, color_scheme=scheme)
            page = await context.new_page()
            await page.goto(world.base + "/login")
            width = await page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= viewport["width"]
            await _screenshot(page, dirs, f"anonymous-login-{size}-{scheme}")
            await context.close()
