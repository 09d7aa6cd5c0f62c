"""Incidents customers can read, and outages that fail together told once to operations.

Staff group the outages of a shared failure into one incident and post updates on it
from the portal (Chromium drives the forms) and the API; each customer reads only their
own links in it, on their link page and home page, and gets one message per route
naming only those links, at a real local webhook receiver and SMTP server; the final
update records the cause, which the link's outage history then shows. Links behind the
same upstream that go down within a minute reach operations as one links-down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg.rows import tuple_row

from collector import Database, upsert_maintenance
from collector.outbox import store_events
from collector.work_log import work_entries
from kernel.config import parse_config
from kernel.domain import Event, EventKind, MaintenanceWindow, Outcome, Sample
from notify import Dispatcher
from notify.grouping import group_of
from portal.keys import ACCOUNTS
from tests.browser_kit import chromium, needs_browser, screenshot
from tests.helpers import elements, section, words
from tests.notify_kit import SECRET, WebhookReceiver, smtp_server, webhook_receiver
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

T0 = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
NBSP = "\u00a0"


# --- the grouping rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("apart_s", "together"),
    [(0, True), (59, True), (60, True), (61, False), (300, False)],
    ids=["same-second", "59s", "60s-same-minute", "61s-apart", "5min-apart"],
)
def test_downs_within_a_minute_of_the_first_are_one_group(apart_s: int, together: bool) -> None:
    a, b = ("a", T0), ("b", T0 + timedelta(seconds=apart_s))
    assert (group_of([a, b], b) == [a, b]) is together
    assert (group_of([a, b], a) == [a, b]) is together


def test_a_group_is_anchored_on_its_first_down_not_chained() -> None:
    a, b, c = ("a", T0), ("b", T0 + timedelta(seconds=50)), ("c", T0 + timedelta(seconds=100))
    assert group_of([c, b, a], a) == [a, b]
    assert group_of([a, b, c], c) == [c]  # 100 s after the first: the next failure


# --- one message for operations -----------------------------------------------------------

GROUPED = """
customers:
  - {id: acme, name: Acme Corp, timezone: Europe/Berlin}
  - {id: zeta, name: Zeta GmbH}
links:
  - id: acme-a
    customer: acme
    description: Acme office A
    upstream: pop-fra
    probes: [{id: ping, kind: icmp, host: 127.0.0.1, interval: 30s, confirm: 2}]
  - id: zeta-b
    customer: zeta
    upstream: pop-fra
    probes: [{id: ping, kind: icmp, host: 127.0.0.2, interval: 30s, confirm: 2}]
  - id: zeta-c
    customer: zeta
    upstream: pop-ber
    probes: [{id: ping, kind: icmp, host: 127.0.0.3, interval: 30s, confirm: 2}]
"""


def notifications(receiver_url: str, smtp_port: int, customer_routes: dict[str, str]) -> str:
    """An operations webhook and e-mail, and a webhook route per customer."""
    channels = "".join(
        f'\n    - {{id: {c}, kind: webhook, url: "{receiver_url}/{c}", secret: {SECRET}}}'
        for c in customer_routes
    )
    routes = "".join(
        f"\n    - {{id: {c}, channel: {c}, customer: {customer}}}"
        for c, customer in customer_routes.items()
    )
    return f"""
notifications:
  hold_down: 0s
  retry_backoff: 100ms
  channels:
    - {{id: ops, kind: webhook, url: "{receiver_url}/ops", secret: {SECRET}}}
    - id: noc-mail
      kind: email
      sender: linkwatch@isp.example
      to: [noc@isp.example]
      smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none}}{channels}
  routes:
    - {{id: ops, channel: ops}}
    - {{id: noc-mail, channel: noc-mail}}{routes}
"""


def down(link: str, customer: str, at: datetime) -> Event:
    return Event(
        f"link-down:{link}:{at.isoformat()}",
        EventKind.LINK_DOWN,
        at,
        customer,
        link,
        {"down_since": at.isoformat()},
    )


async def settle(dispatcher: Dispatcher, now: list[datetime], until: datetime) -> None:
    """Pass after pass while the clock moves to `until` (the group's wait ends)."""
    while now[0] < until:
        await dispatcher.run_once()
        now[0] += timedelta(seconds=20)
    for _ in range(3):
        await dispatcher.run_once()


def kinds(receiver: WebhookReceiver, path: str) -> list[str]:
    return sorted(d.body["kind"] for d in receiver.accepted if d.path == path)


@pytest.mark.parametrize(
    ("second", "apart_s", "grouped"),
    [("zeta-b", 60, True), ("zeta-b", 61, False), ("zeta-c", 0, False)],
    ids=["same-upstream-same-minute", "same-upstream-61s-apart", "other-upstream-same-second"],
)
async def test_links_down_together_behind_one_upstream_are_one_message_for_operations(
    database: Database, second: str, apart_s: int, grouped: bool
) -> None:
    now = [T0]
    async with webhook_receiver() as receiver, smtp_server() as smtp:
        config = parse_config(
            GROUPED + notifications(receiver.url, smtp.port, {"acme": "acme", "zeta": "zeta"})
        )
        dispatcher = Dispatcher(database, config, clock=lambda: now[0])
        first, other = (
            down("acme-a", "acme", T0),
            down(second, "zeta", T0 + timedelta(seconds=apart_s)),
        )
        await store_events(database, [first])
        await dispatcher.run_once()
        now[0] = other.occurred_at + timedelta(seconds=60)  # confirmed a sample later
        await store_events(database, [other])
        await settle(dispatcher, now, T0 + timedelta(minutes=5))

    # Customers get their own link's down message, at once, whatever the grouping.
    assert receiver.ids("/acme") == [first.id]
    assert receiver.ids("/zeta") == [other.id]
    subjects = [m["Subject"] for _, m in smtp.messages]
    if grouped:
        assert kinds(receiver, "/ops") == ["links-down"]
        body = next(d.body for d in receiver.accepted if d.path == "/ops")
        assert body["subject"] == "[Linkwatch] DOWN: 2 links behind pop-fra"
        assert [i["link_id"] for i in body["data"]["links"]] == ["acme-a", "zeta-b"]
        assert "Acme office A (acme-a)" in body["facts"]["Links"]
        assert subjects == ["[Linkwatch] DOWN: 2 links behind pop-fra"]
    else:
        assert kinds(receiver, "/ops") == ["link-down", "link-down"]
        assert len(subjects) == 2
        assert all("links behind" not in s for s in subjects)


async def test_a_grouped_links_recovery_still_reaches_operations(database: Database) -> None:
    now = [T0]
    async with webhook_receiver() as receiver, smtp_server() as smtp:
        config = parse_config(GROUPED + notifications(receiver.url, smtp.port, {}))
        dispatcher = Dispatcher(database, config, clock=lambda: now[0])
        a, b = down("acme-a", "acme", T0), down("zeta-b", "zeta", T0 + timedelta(seconds=20))
        await store_events(database, [a, b])
        await settle(dispatcher, now, T0 + timedelta(minutes=4))
        until = now[0]
        back = Event(
            f"link-recovered:acme-a:{T0.isoformat()}",
            EventKind.LINK_RECOVERED,
            until,
            "acme",
            "acme-a",
            {"down_since": T0.isoformat(), "down_until": until.isoformat(), "down_s": 240},
        )
        await store_events(database, [back])
        await settle(dispatcher, now, until + timedelta(seconds=30))
    assert kinds(receiver, "/ops") == ["link-recovered", "links-down"]


# --- incidents through the API -------------------------------------------------------------

ROUTES = {"acme-hook": "acme", "globex-hook": "globex"}


def history(now: datetime) -> list[Sample]:
    """The standard history (acme-ber-2 down for 25 minutes), and globex-bos-2 down for
    the last 20 minutes after being up: two customers' outages of one shared failure."""
    out = standard_history(now)
    out += samples("globex-bos-2", minutes(now - timedelta(hours=2), now - timedelta(minutes=20)))
    out += samples(
        "globex-bos-2",
        minutes(now - timedelta(minutes=20), now),
        Outcome.DOWN,
        error="no reply (5/5 lost)",
    )
    return out


@dataclass
class Desk:
    kit: PortalKit
    receiver: WebhookReceiver
    smtp: Any
    tokens: dict[str, str]

    async def api(self, method: str, path: str, who: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        client = self.kit.client
        if method == "GET":
            response = await client.get(f"/api/v1{path}", headers=headers)
        else:
            response = await client.post(f"/api/v1{path}", json=body, headers=headers)
        text = await response.text()
        assert "Traceback" not in text
        return response.status, (await response.json()) if text.startswith("{") else text

    async def deliver(self) -> None:
        dispatcher = Dispatcher(self.kit.db, self.kit.config, clock=self.kit.clock)
        for _ in range(3):
            await dispatcher.run_once()


@pytest.fixture
async def desk(database: Database) -> AsyncIterator[Desk]:
    async with webhook_receiver() as receiver, smtp_server() as smtp:
        config = portal_config(CONFIG_TEXT + notifications(receiver.url, smtp.port, ROUTES))
        async with running_portal(database, config, history=history) as kit:
            accounts = kit.client.app[ACCOUNTS]
            tokens = {}
            for name in ("alice", "gus", "olga", "bill"):
                user = await accounts.user(name)
                assert user is not None
                tokens[name] = (await accounts.create_token(user, "test", kit.clock()))[1]
            yield Desk(kit, receiver, smtp, tokens)


def outage(desk: Desk, link: str, minutes_ago: int) -> dict[str, str]:
    start = desk.kit.clock() - timedelta(minutes=minutes_ago)
    return {"link": link, "outage_start": start.isoformat()}


def planned_work(now: datetime) -> list[MaintenanceWindow]:
    """acme-ber-2's outage (the last 25 minutes) falls inside announced work; of
    globex-bos-2's (the last 20), the last 10 minutes do, and all of it falls inside work
    announced too late to count."""
    ago, days = lambda n: now - timedelta(minutes=n), timedelta(days=5)
    return [
        MaintenanceWindow("mw-core", ago(40), ago(-20), now - days, "Core router upgrade",
                          link_ids=("acme-ber-2",)),
        MaintenanceWindow("mw-rewire", ago(10), ago(-60), now - days, "Boston rewiring",
                          link_ids=("globex-bos-2",)),
        MaintenanceWindow("mw-hotfix", ago(30), ago(-60), ago(60), "Hotfix",
                          customer_ids=("globex",)),
    ]  # fmt: skip


def excluded_notes(html: str) -> list[str]:
    """What the page says excluded maintenance took out of outages, in page order."""
    # `words` puts a space where a tag ends; a reader sees none before the colon.
    return [words(p).strip().replace(" :", ":") for p in elements(html, "p", "excluded-note")]


async def test_an_update_reaches_each_customer_with_their_links_only_and_closing_records_the_cause(
    desk: Desk,
) -> None:
    await upsert_maintenance(desk.kit.db, planned_work(desk.kit.clock()), source="config")
    both = [outage(desk, "acme-ber-2", 25), outage(desk, "globex-bos-2", 20)]
    status, made = await desk.api(
        "POST", "/incidents", "olga", {"title": "Fibre cut Frankfurt-Berlin", "outages": both}
    )
    assert status == 200, made
    number = made["id"]

    # Operations read which outages announced work excluded, and how much, in UTC.
    await desk.kit.sign_in("olga")
    noc = await desk.kit.page("/noc/incidents")
    whole = (
        "Excluded: planned maintenance “Core router upgrade”, "
        "2026-11-18 11:20 UTC to 2026-11-18 12:20 UTC"
    )
    part = (
        f"10{NBSP}min of 20{NBSP}min so far excluded: planned maintenance “Boston rewiring”, "
        "2026-11-18 11:50 UTC to 2026-11-18 13:00 UTC"
    )
    assert excluded_notes(section(noc, "open-heading")) == [
        f"acme-ber-2 (Berlin data centre <backup>), down since 2026-11-18 11:35 UTC: {whole}.",
        f"globex-bos-2 (Boston branch), down since 2026-11-18 11:40 UTC: {part}.",
    ]
    assert excluded_notes(section(noc, "outages-heading")) == [part, whole]  # newest first
    assert "Hotfix" not in str(excluded_notes(noc))  # announced an hour ahead: it counts
    await desk.kit.sign_out()
    assert [o["link"] for o in made["outages"]] == ["acme-ber-2", "globex-bos-2"]

    status, told = await desk.api(
        "POST",
        f"/incidents/{number}/updates",
        "olga",
        {"body": "Fibre cut between Frankfurt and Berlin, crew on site, ETA 14:00"},
    )
    assert status == 200, told
    await desk.deliver()
    hooks = desk.receiver
    acme = [d.body for d in hooks.accepted if d.path == "/acme-hook"]
    globex = [d.body for d in hooks.accepted if d.path == "/globex-hook"]
    ops = [d.body for d in hooks.accepted if d.path == "/ops"]
    updates = [b for b in acme if b["kind"] == "incident-update"]
    assert len(updates) == 1
    assert updates[0]["data"]["link_ids"] == ["acme-ber-2"]
    assert "globex" not in str(updates[0]).lower()
    assert (
        updates[0]["subject"]
        == f"[Linkwatch] Update: Fibre cut Frankfurt-Berlin (incident #{number})"
    )
    assert "crew on site, ETA 14:00" in updates[0]["summary"]
    assert [b["data"]["link_ids"] for b in globex if b["kind"] == "incident-update"] == [
        ["globex-bos-2"]
    ]
    assert "acme" not in str([b for b in globex if b["kind"] == "incident-update"]).lower()
    assert [b["data"]["link_ids"] for b in ops if b["kind"] == "incident-update"] == [
        ["acme-ber-2", "globex-bos-2"]
    ]
    mails = [m for _, m in desk.smtp.messages if "Update:" in m["Subject"]]
    assert len(mails) == 1  # operations' e-mail: one, not one per customer

    # Each customer reads the incident with their own link only, and not who posted.
    status, seen = await desk.api("GET", f"/incidents/{number}", "alice")
    assert status == 200
    assert [o["link"] for o in seen["outages"]] == ["acme-ber-2"]
    assert seen["updates"][0]["links"] == ["acme-ber-2"]
    assert seen["updates"][0]["posted_by"] is None
    assert seen["opened_by"] is None
    status, listed = await desk.api("GET", "/incidents", "gus")
    assert [o["link"] for o in listed["items"][0]["outages"]] == ["globex-bos-2"]
    assert "acme" not in str(listed).lower()

    kit = desk.kit
    await kit.sign_in("alice")
    home = await kit.page("/links")
    assert "crew on site, ETA 14:00" in home
    assert "globex" not in home.lower()
    # The customer reads it in their own zone, on the home page and the link's page.
    excluded = (
        "Excluded: planned maintenance “Core router upgrade”, "
        "2026-11-18 12:20 CET to 2026-11-18 13:20 CET"
    )
    down_since = "acme-ber-2 (Berlin data centre <backup>), down since 2026-11-18 12:35 CET"
    assert excluded_notes(section(home, "home-incidents-heading")) == [f"{down_since}: {excluded}."]
    page = await kit.page("/links/acme-ber-2")
    assert f"Incident #{number}: Fibre cut Frankfurt-Berlin" in page
    assert "globex" not in page.lower()
    assert "olga" not in page
    assert excluded_notes(section(page, "incident-reports-heading")) == [
        f"{down_since}: {excluded}."
    ]
    assert excluded_notes(section(page, "incidents-heading")) == [excluded]

    kit.clock.advance(timedelta(minutes=30))
    status, closed = await desk.api(
        "POST",
        f"/incidents/{number}/updates",
        "olga",
        {
            "body": "Spliced and tested; all links are back.",
            "close": {"category": "fibre-cut", "cause": "Excavator cut the duct at Main St."},
        },
    )
    assert status == 200, closed
    assert closed["open"] is False
    assert closed["cause_category"] == "fibre-cut"
    await desk.deliver()
    resolved = [
        d.body
        for d in hooks.accepted
        if d.path == "/acme-hook" and d.body["kind"] == "incident-update"
    ]
    assert resolved[-1]["subject"].startswith("[Linkwatch] Resolved: Fibre cut Frankfurt-Berlin")
    assert resolved[-1]["facts"]["Cause"] == "Fibre cut: Excavator cut the duct at Main St."
    page = await kit.page("/links/acme-ber-2")
    assert f"Incident #{number}, Fibre cut: Excavator cut the duct at Main St." in page
    assert "Resolved" in await kit.page("/links")  # still on the home page, a while

    trail = await work_entries(kit.db, subject=f"incident:{number}")
    assert [e.action for e in reversed(trail)] == [
        "incident-opened",
        "incident-updated",
        "incident-closed",
    ]
    assert {e.actor for e in trail} == {"olga"}
    assert trail[0].customer_ids == ("acme", "globex")


async def test_an_outage_joins_an_open_incident_and_the_next_update_names_it(desk: Desk) -> None:
    status, made = await desk.api(
        "POST",
        "/incidents",
        "olga",
        {"title": "PoP Frankfurt power", "outages": [outage(desk, "acme-ber-2", 25)]},
    )
    assert status == 200
    number = made["id"]
    status, grown = await desk.api(
        "POST",
        f"/incidents/{number}/outages",
        "olga",
        {"outages": [outage(desk, "globex-bos-2", 20)]},
    )
    assert status == 200, grown
    assert [o["link"] for o in grown["outages"]] == ["acme-ber-2", "globex-bos-2"]
    await desk.api("POST", f"/incidents/{number}/updates", "olga", {"body": "Generator started"})
    await desk.deliver()
    assert any(
        d.body["kind"] == "incident-update"
        for d in desk.receiver.accepted
        if d.path == "/globex-hook"
    )


async def test_bad_requests_are_refused_with_what_to_change_and_nothing_is_stored(
    desk: Desk,
) -> None:
    ber = outage(desk, "acme-ber-2", 25)
    status, made = await desk.api("POST", "/incidents", "olga", {"title": "Cut", "outages": [ber]})
    assert status == 200
    number = made["id"]
    updates = f"/incidents/{number}/updates"

    def titled(outages: list[Any]) -> dict[str, Any]:
        return {"title": "x", "outages": outages}

    cases: list[tuple[str, str, Any, int, str]] = [
        ("/incidents", "olga", {"outages": [ber]}, 400, "title is required"),
        ("/incidents", "olga", titled([]), 400, "outages is required"),
        ("/incidents", "olga", titled([{"link": "acme-ber-2"}]), 400, "outage_start"),
        ("/incidents", "olga", titled([{**ber, "outage_start": "soon"}]), 400, "not a time"),
        ("/incidents", "olga", titled([outage(desk, "acme-ber-2", 24)]), 404,
         "no outage that began"),
        ("/incidents", "olga", titled([outage(desk, "no-such", 24)]), 404, "no link"),
        ("/incidents", "olga", titled([ber]), 409, f"part of incident #{number}"),
        ("/incidents", "olga", {**titled([ber]), "extra": 1}, 400, "extra"),
        (updates, "olga", {"body": "   "}, 400, "body is required"),
        (updates, "olga", {"body": "x", "close": {"category": "gremlins", "cause": "x"}}, 400,
         "close.category"),
        (updates, "olga", {"body": "x", "close": {"category": "power"}}, 400, "cause is required"),
        ("/incidents/999999/updates", "olga", {"body": "x"}, 404, "no incident #999999"),
        (updates, "alice", {"body": "x"}, 404, ""),
        ("/incidents", "bill", titled([ber]), 404, ""),
    ]  # fmt: skip
    for path, who, body, expected, said in cases:
        status, answer = await desk.api("POST", path, who, body)
        assert status == expected, (path, body, answer)
        assert said in str(answer), (said, answer)
    response = await desk.kit.client.post(
        f"/api/v1/incidents/{number}/updates",
        data="body=x",
        headers={
            "Authorization": f"Bearer {desk.tokens['olga']}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status == 415
    status, seen = await desk.api("GET", f"/incidents/{number}", "olga")
    assert seen["updates"] == []
    assert seen["outages"][0]["link"] == "acme-ber-2"

    await desk.api(
        "POST",
        f"/incidents/{number}/updates",
        "olga",
        {"body": "Fixed", "close": {"category": "power", "cause": "Breaker tripped"}},
    )
    status, again = await desk.api("POST", f"/incidents/{number}/updates", "olga", {"body": "x"})
    assert status == 409
    assert "closed by olga" in str(again)
    # A customer asks for an incident of nobody's links of theirs: as if there were none.
    status, hidden = await desk.api("GET", f"/incidents/{number}", "gus")
    missing = await desk.api("GET", "/incidents/999999", "gus")
    assert (status, hidden) == missing


async def test_the_desk_refuses_a_blank_form_with_what_to_change(desk: Desk) -> None:
    kit = desk.kit
    token = await kit.sign_in("olga")
    response = await kit.client.post(
        "/noc/incidents", data={"csrf_token": token, "title": "x"}, allow_redirects=False
    )
    assert response.status == 400
    assert "pick at least one outage" in await response.text()
    response = await kit.client.post(
        "/noc/incidents",
        data={"csrf_token": token, "title": "x", "outage": "acme-ber-2|yesterday"},
        allow_redirects=False,
    )
    assert response.status == 400
    assert "is not a time" in await response.text()
    async with kit.db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute("SELECT count(*) FROM incident_reports")
        assert await cur.fetchone() == (0,)


# --- the browser ------------------------------------------------------------------------


async def _sign_in(page: Any, base: str, name: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#username", name)
    await page.fill("#password", PASSWORDS[name])
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")


@needs_browser
async def test_ops_group_post_and_close_in_the_browser_and_the_customer_reads_it(
    desk: Desk,
) -> None:
    base = str(desk.kit.client.make_url("")).rstrip("/")
    async with chromium() as browser:
        noc = await (await browser.new_context()).new_page()
        await _sign_in(noc, base, "olga")
        await noc.goto(f"{base}/noc")
        await noc.click("a[href='/noc/incidents']")
        await noc.check("input[name=outage][value^='acme-ber-2|']")
        await noc.check("input[name=outage][value^='globex-bos-2|']")
        await noc.fill("form.incident-group-form input[name=title]", "Fibre cut Frankfurt-Berlin")
        await noc.click("form.incident-group-form button[type=submit]")
        await noc.wait_for_load_state("networkidle")
        assert "The incident is open" in await noc.inner_text("main")
        await noc.fill("textarea[name=body]", "Fibre cut between X and Y, crew on site, ETA 14:00")
        await noc.click("form.incident-update-form button[type=submit]")
        await noc.wait_for_load_state("networkidle")
        assert "The update is posted" in await noc.inner_text("main")
        await screenshot(noc, "incident-desk")

        customer = await (await browser.new_context()).new_page()
        await _sign_in(customer, base, "alice")
        home = await customer.inner_text("main")
        assert "crew on site, ETA 14:00" in home
        assert "globex" not in home.lower()
        assert "Boston" not in home

        # The final update, from the link page this time.
        await noc.goto(f"{base}/links/acme-ber-2")
        await noc.fill("form.incident-update-form textarea[name=body]", "Repaired.")
        await noc.check("form.incident-update-form input[name=close]")
        await noc.select_option(
            "form.incident-update-form select[name=cause_category]", "fibre-cut"
        )
        await noc.fill("form.incident-update-form input[name=cause]", "Excavator at Main St.")
        await noc.click("form.incident-update-form button[type=submit]")
        await noc.wait_for_load_state("networkidle")
        assert "/links/acme-ber-2" in noc.url
        assert "resolved with its cause" in await noc.inner_text("main")

        await customer.goto(f"{base}/links/acme-ber-2")
        text = await customer.inner_text("main")
        assert "Fibre cut: Excavator at Main St." in text
        assert "Repaired." in text
        await screenshot(customer, "incident-customer-link")
    await desk.deliver()
    acme = [d.body["subject"] for d in desk.receiver.accepted if d.path == "/acme-hook"]
    assert any(s.startswith("[Linkwatch] Resolved: Fibre cut Frankfurt-Berlin") for s in acme)
