"""Maintenance as the NOC runs it: announced, rescheduled and cancelled from the portal
(in Chromium) and the API, told to the customers concerned at a real webhook and SMTP
receiver with an iCalendar (maintnote) they can parse, weighed by the SLA engine from
the moment the system announced it, and followed by customers on their home page and in
a calendar feed that holds only their own work.

The clock is the portal kit's: Wednesday 2026-11-18 12:00 UTC, in week 2026-W47. Every
window here lies on Sunday 2026-11-22, inside that week in Berlin (acme's zone), and
acme's contracts ask for the default 72 h of notice.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest

from collector import Database
from collector.embedded import EmbeddedPostgres
from collector.maintenance_work import create_window, resolve_scope
from collector.work_log import work_entries
from kernel.config import Config
from notify import Dispatcher, Evaluator
from portal.keys import ACCOUNTS
from tests.browser_kit import chromium, needs_browser, screenshot
from tests.helpers import linkwatch
from tests.notify_kit import SECRET, SmtpSink, WebhookReceiver, smtp_server, webhook_receiver
from tests.portal_kit import CONFIG_TEXT, NOW, PASSWORDS, PortalKit, portal_config, running_portal
from tests.test_notify import drain

SUNDAY_6 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)  # 90 h after NOW: enough notice
FRIDAY_NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _notifications(receiver_url: str, smtp_port: int) -> str:
    return f"""
notifications:
  hold_down: 0s
  retry_backoff: 100ms
  portal_url: https://portal.isp.example
  channels:
    - {{id: ops, kind: webhook, url: "{receiver_url}/ops", secret: {SECRET}, timeout: 2s}}
    - {{id: acme, kind: webhook, url: "{receiver_url}/acme", secret: {SECRET}, timeout: 2s}}
    - {{id: globex, kind: webhook, url: "{receiver_url}/globex", secret: {SECRET},
        timeout: 2s}}
    - id: acme-mail
      kind: email
      sender: noc@isp.example
      to: [it@acme.example]
      smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none}}
  routes:
    - {{id: ops, channel: ops}}
    - {{id: acme, channel: acme, customer: acme}}
    - {{id: acme-mail, channel: acme-mail, customer: acme}}
    - {{id: globex, channel: globex, customer: globex}}
"""


async def _token(kit: PortalKit, name: str) -> str:
    accounts = kit.client.app[ACCOUNTS]
    user = await accounts.user(name)
    assert user is not None
    return (await accounts.create_token(user, "maintenance", kit.clock()))[1]


class Api:
    def __init__(self, kit: PortalKit, token: str) -> None:
        self.kit, self.headers = kit, {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: Any, status: int = 200) -> dict[str, Any]:
        response = await self.kit.client.post(
            f"/api/v1{path}", json=body, headers=self.headers, allow_redirects=False
        )
        answer = await response.json()
        assert response.status == status, answer
        return dict(answer)

    async def get(self, path: str, status: int = 200) -> Any:
        response = await self.kit.client.get(f"/api/v1{path}", headers=self.headers)
        assert response.status == status, await response.text()
        if response.content_type == "text/calendar":
            return await response.text()
        return await response.json()


def _event(text: str) -> icalendar.Event:
    """The one VEVENT of a maintnote calendar, parsed by an independent parser."""
    calendar = icalendar.Calendar.from_ical(text)
    assert str(calendar["METHOD"]) == "PUBLISH"
    (event,) = calendar.walk("VEVENT")
    return event


def _objects(event: icalendar.Event) -> list[str]:
    found = event.get("X-MAINTNOTE-OBJECT-ID")
    return [str(v) for v in (found if isinstance(found, list) else [found])]


# --- the API, the notices and what they say --------------------------------------------------


@pytest.fixture
async def told(database: Database) -> AsyncIterator[tuple[PortalKit, WebhookReceiver, SmtpSink]]:
    async with webhook_receiver() as receiver, smtp_server() as smtp:
        config = portal_config(CONFIG_TEXT + _notifications(receiver.url, smtp.port))
        async with running_portal(database, config) as kit:
            yield kit, receiver, smtp


async def _notify(kit: PortalKit) -> None:
    """One notification pass at the kit's clock, delivered."""
    clock = kit.clock
    await Evaluator(kit.db, kit.config, clock=lambda: clock.now).evaluate_once()
    await drain(Dispatcher(kit.db, kit.config, clock=lambda: clock.now))


def _kinds(receiver: WebhookReceiver, path: str) -> list[str]:
    """The maintenance notices `path` received (acme-ber-2's outage is told too)."""
    return [
        d.body["kind"]
        for d in receiver.accepted
        if d.path == path and d.body["kind"].startswith("maintenance-")
    ]


async def test_announced_rescheduled_and_cancelled_through_the_api_each_customer_is_told(
    told: tuple[PortalKit, WebhookReceiver, SmtpSink],
) -> None:
    kit, receiver, smtp = told
    olga = Api(kit, await _token(kit, "olga"))
    created = await olga.post(
        "/maintenance",
        {
            "link_ids": ["acme-fra-1"],
            "starts_at": SUNDAY_6.isoformat(),
            "ends_at": (SUNDAY_6 + timedelta(hours=2)).isoformat(),
            "description": "Fibre splice on the Frankfurt ring",
            "reference": "CHG-4711",
            "impact": "OUTAGE",
        },
    )
    window = created["window"]
    mw = window["id"]
    # The system records the announcement: the moment of the request, not a typed value.
    assert window["announced_at"] == "2026-11-18T12:00:00+00:00"
    assert (window["sequence"], window["reference"], created["source"]) == (0, "CHG-4711", "portal")
    assert [(h["action"], h["by"]) for h in created["history"]] == [("created", "olga")]

    await _notify(kit)
    assert _kinds(receiver, "/acme") == ["maintenance-announced"]
    assert _kinds(receiver, "/ops") == ["maintenance-announced"]
    assert _kinds(receiver, "/globex") == []  # not their link
    assert all(d.signed for d in receiver.accepted)
    (acme,) = [d.body for d in receiver.accepted if d.path == "/acme" and "calendar" in d.body]
    # What it means for their SLA, per contract: announced 90 h ahead of 72 h required.
    assert (
        "For contract acme-fra-gold it is excluded from the availability measured"
        in (acme["summary"])
    )
    assert (
        acme["facts"]["SLA of acme-fra-gold"]
        == "excluded (announced 3\u00a0d 18\u00a0h ahead, 3\u00a0d required)"
    )
    event = _event(acme["calendar"])
    assert str(event["UID"]) == f"{mw}@portal.isp.example"
    assert int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == SUNDAY_6
    assert event.decoded("DTEND") == SUNDAY_6 + timedelta(hours=2)
    assert str(event["X-MAINTNOTE-PROVIDER"]) == "portal.isp.example"
    assert str(event["X-MAINTNOTE-ACCOUNT"]) == "acme"
    assert str(event["X-MAINTNOTE-MAINTENANCE-ID"]) == mw
    assert _objects(event) == ["acme-fra-1"]
    assert str(event["X-MAINTNOTE-IMPACT"]) == "OUTAGE"
    assert str(event["X-MAINTNOTE-STATUS"]) == "CONFIRMED"
    assert "CHG-4711" in str(event["SUMMARY"])
    assert "excluded from the availability" in str(event["DESCRIPTION"])

    # The e-mail to acme carries the same calendar as an attachment.
    ((to, mail),) = [m for m in smtp.messages if "Maintenance" in str(m[1]["Subject"])]
    assert to == ["it@acme.example"]
    (attachment,) = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_filename() == f"{mw}.ics"
    mailed = _event(attachment.get_content())
    assert str(mailed["UID"]) == str(event["UID"])
    assert str(mailed["X-MAINTNOTE-ACCOUNT"]) == "acme"

    # Moved on Friday to Sunday 07:00: announced again, now only 43 h ahead.
    kit.clock.now = FRIDAY_NOON
    moved = await olga.post(
        f"/maintenance/{mw}/reschedule",
        {
            "starts_at": (SUNDAY_6 + timedelta(hours=1)).isoformat(),
            "ends_at": (SUNDAY_6 + timedelta(hours=3)).isoformat(),
            "note": "crew not available earlier",
        },
    )
    assert moved["window"]["announced_at"] == "2026-11-20T12:00:00+00:00"
    assert moved["window"]["sequence"] == 1
    rescheduled = moved["history"][-1]
    assert (rescheduled["action"], rescheduled["by"], rescheduled["previous_starts_at"]) == (
        "rescheduled",
        "olga",
        "2026-11-22T06:00:00+00:00",
    )
    await _notify(kit)
    assert _kinds(receiver, "/acme") == ["maintenance-announced", "maintenance-announced"]
    again = [d.body for d in receiver.accepted if d.path == "/acme"][-1]
    assert "For contract acme-fra-gold it counts as normal time" in again["summary"]
    assert (
        again["facts"]["SLA of acme-fra-gold"]
        == "normal time (announced 1\u00a0d 19\u00a0h ahead, 3\u00a0d required)"
    )
    event = _event(again["calendar"])
    assert (str(event["UID"]), int(event["SEQUENCE"])) == (f"{mw}@portal.isp.example", 1)
    assert event.decoded("DTSTART") == SUNDAY_6 + timedelta(hours=1)

    # Cancelled: whoever was told hears of it, and calendars drop it.
    cancelled = await olga.post(f"/maintenance/{mw}/cancel", {"note": "vendor postponed"})
    assert cancelled["window"]["cancelled_at"] == "2026-11-20T12:00:00+00:00"
    assert cancelled["editable"] is False
    await _notify(kit)
    assert _kinds(receiver, "/acme")[-1] == "maintenance-cancelled"
    assert _kinds(receiver, "/ops")[-1] == "maintenance-cancelled"
    gone = [d.body for d in receiver.accepted if d.path == "/acme"][-1]
    assert "No work will be done" in gone["summary"]
    event = _event(gone["calendar"])
    assert (str(event["STATUS"]), str(event["X-MAINTNOTE-STATUS"])) == ("CANCELLED", "CANCELLED")
    assert int(event["SEQUENCE"]) == 2  # above the last announcement's, so it replaces it
    assert _kinds(receiver, "/globex") == []

    # The window's history and the operations trail, which billing reads.
    detail = await olga.get(f"/maintenance/{mw}")
    assert [h["action"] for h in detail["history"]] == ["created", "rescheduled", "cancelled"]
    trail = await work_entries(kit.db, subject=f"maintenance:{mw}")
    assert [(e.action, e.actor, e.customer_ids) for e in reversed(trail)] == [
        ("maintenance-announced", "olga", ("acme",)),
        ("maintenance-rescheduled", "olga", ("acme",)),
        ("maintenance-cancelled", "olga", ("acme",)),
    ]
    await kit.sign_in("bill")
    audit = await kit.page("/billing/audit")
    assert "maintenance-rescheduled" in audit


async def test_bad_requests_are_refused_with_what_to_change(database: Database) -> None:
    async with running_portal(database) as kit:
        olga = Api(kit, await _token(kit, "olga"))
        alice = Api(kit, await _token(kit, "alice"))
        good = {
            "link_ids": ["acme-fra-1"],
            "starts_at": SUNDAY_6.isoformat(),
            "ends_at": (SUNDAY_6 + timedelta(hours=2)).isoformat(),
            "description": "Line card swap",
        }
        refusals = [
            ({**good, "ends_at": SUNDAY_6.isoformat()}, "must be after the start"),
            (
                {**good, "starts_at": "2026-11-17T00:00:00Z", "ends_at": "2026-11-17T02:00:00Z"},
                "over already",
            ),
            ({**good, "link_ids": ["no-such-link"]}, "no such link: no-such-link"),
            ({**good, "everything": True}, "choose links, customers or everything"),
            ({**good, "link_ids": []}, "say what the work covers"),
            ({**good, "description": "  "}, "description is required"),
            ({**good, "announced_at": "2026-11-01T00:00:00Z"}, "unknown field 'announced_at'"),
            ({**good, "impact": "SEVERE"}, "impact 'SEVERE' is not known"),
            ({**good, "starts_at": "next sunday"}, "is not a time"),
            ({**good, "ends_at": "2026-12-31T00:00:00Z"}, "at most 31 days"),
            ([good], "must be a JSON object"),
        ]
        for body, message in refusals:
            answer = await olga.post("/maintenance", body, status=400)
            assert message in answer["error"]["message"], (body, answer)
        # A customer cannot announce: the 404 of something that does not exist.
        await alice.post("/maintenance", good, status=404)

        mw = (await olga.post("/maintenance", good))["window"]["id"]
        await alice.post(f"/maintenance/{mw}/cancel", {}, status=404)
        await olga.post("/maintenance/mw-424242/cancel", {}, status=404)
        same = {"starts_at": good["starts_at"], "ends_at": good["ends_at"]}
        answer = await olga.post(f"/maintenance/{mw}/reschedule", same, status=400)
        assert "already planned" in answer["error"]["message"]
        # Under way: it can be stopped, not moved.
        kit.clock.now = SUNDAY_6 + timedelta(minutes=30)
        later = {"starts_at": "2026-11-29T06:00:00Z", "ends_at": "2026-11-29T08:00:00Z"}
        answer = await olga.post(f"/maintenance/{mw}/reschedule", later, status=409)
        assert "work under way cannot be moved" in answer["error"]["message"]
        stopped = await olga.post(f"/maintenance/{mw}/cancel", {})
        assert stopped["window"]["cancelled_at"] == "2026-11-22T06:30:00+00:00"
        answer = await olga.post(f"/maintenance/{mw}/cancel", {}, status=409)
        assert "was cancelled" in answer["error"]["message"]

        # A window from the config file is changed there, and the page says so.
        from collector import upsert_maintenance
        from kernel.domain import MaintenanceWindow

        declared = MaintenanceWindow(
            "cfg-core", SUNDAY_6 + timedelta(days=7), SUNDAY_6 + timedelta(days=7, hours=1), NOW
        )
        await upsert_maintenance(kit.db, [declared], source="config")
        answer = await olga.post("/maintenance/cfg-core/cancel", {}, status=409)
        assert "declared in the config file" in answer["error"]["message"]
        await kit.sign_in("olga")
        page = await kit.page("/noc/maintenance/cfg-core")
        assert "cannot be rescheduled or cancelled here" in page
        assert 'id="reschedule-form"' not in page
        # A form without the session's CSRF token is refused, and nothing changes.
        response = await kit.client.post(
            "/noc/maintenance",
            data={"scope": "everything", "starts_at": "2026-12-01T00:00", "ends_at":
                  "2026-12-01T01:00", "description": "x"},
            allow_redirects=False,
        )  # fmt: skip
        assert response.status == 403


# --- the SLA engine follows the announcement ---------------------------------------------------


def _excluded_s(config_path: Path) -> dict[str, Any]:
    result = linkwatch(
        "report", "sla", "--config", str(config_path), "--window", "2026-W47", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    return {r["contract"]: r["excluded_s"] for r in json.loads(result.stdout)}


async def test_report_sla_excludes_the_window_until_a_reschedule_makes_the_notice_short(
    database: Database, embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    config_path = tmp_path / "linkwatch.yaml"
    config_path.write_text(f"database: {{url: '{embedded_postgres.url}'}}\n" + CONFIG_TEXT)
    async with running_portal(database) as kit:
        olga = Api(kit, await _token(kit, "olga"))
        mw = (
            await olga.post(
                "/maintenance",
                {
                    "link_ids": ["acme-fra-1"],
                    "starts_at": SUNDAY_6.isoformat(),
                    "ends_at": (SUNDAY_6 + timedelta(hours=2)).isoformat(),
                    "description": "Fibre splice",
                },
            )
        )["window"]["id"]
        # Announced 90 h ahead: the two hours are excluded from acme-fra-gold's week.
        assert _excluded_s(config_path)["acme-fra-gold"] == 7200
        kit.clock.now = FRIDAY_NOON
        await olga.post(
            f"/maintenance/{mw}/reschedule",
            {
                "starts_at": (SUNDAY_6 + timedelta(hours=1)).isoformat(),
                "ends_at": (SUNDAY_6 + timedelta(hours=3)).isoformat(),
            },
        )
        # Announced again 43 h ahead, under the 72 h the contract asks: normal time.
        assert _excluded_s(config_path)["acme-fra-gold"] == 0


# --- what customers see: their home page and their calendar --------------------------------


async def _plan(kit: PortalKit, config: Config) -> dict[str, str]:
    made = {}
    for name, kwargs, start in (
        ("acme", {"link_ids": ["acme-ber-2"]}, SUNDAY_6),
        ("globex", {"customer_ids": ["globex"]}, SUNDAY_6),
        ("everyone", {"everything": True}, SUNDAY_6 + timedelta(days=1)),
        ("acme-later", {"link_ids": ["acme-fra-1"]}, NOW + timedelta(days=40)),
    ):
        window = await create_window(
            kit.db,
            resolve_scope(config, **kwargs),  # type: ignore[arg-type]
            starts_at=start,
            ends_at=start + timedelta(hours=2),
            description=f"Work for {name}",
            by="olga",
            now=kit.clock(),
        )
        made[name] = window.id
    return made


async def test_customers_see_and_subscribe_to_their_own_maintenance_only(
    database: Database,
) -> None:
    async with running_portal(database) as kit:
        made = await _plan(kit, kit.config)
        await kit.sign_in("alice")
        home = await kit.page("/links")
        assert "Planned maintenance" in home
        assert "Work for acme" in home
        assert "Work for everyone" in home
        assert "Work for globex" not in home
        assert "Work for acme-later" not in home  # more than 30 days ahead
        feed = await kit.page("/maintenance.ics")
        calendar = icalendar.Calendar.from_ical(feed)
        events = {str(e["X-MAINTNOTE-MAINTENANCE-ID"]): e for e in calendar.walk("VEVENT")}
        assert set(events) == {made["acme"], made["everyone"], made["acme-later"]}
        assert {str(e["X-MAINTNOTE-ACCOUNT"]) for e in events.values()} == {"acme"}
        assert _objects(events[made["everyone"]]) == ["acme-fra-1", "acme-ber-2"]
        assert "globex" not in feed.lower()

        # The same feed for a calendar client, with an API token.
        alice = Api(kit, await _token(kit, "alice"))
        assert await alice.get("/maintenance.ics") == feed
        await alice.get(f"/maintenance/{made['globex']}", status=404)
        mine = await alice.get(f"/maintenance/{made['everyone']}")
        assert mine["history"] is None  # staff names are staff's
        assert mine["window"]["link_ids"] == []

        gus = Api(kit, await _token(kit, "gus"))
        theirs = icalendar.Calendar.from_ical(await gus.get("/maintenance.ics"))
        assert {str(e["X-MAINTNOTE-MAINTENANCE-ID"]) for e in theirs.walk("VEVENT")} == {
            made["globex"],
            made["everyone"],
        }
        response = await kit.client.get("/api/v1/maintenance.ics")
        assert response.status == 401


# --- the NOC's desk in a browser ---------------------------------------------------------------


async def _sign_in(page: Any, base: str, name: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#username", name)
    await page.fill("#password", PASSWORDS[name])
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")


@needs_browser
async def test_ops_announce_reschedule_and_cancel_in_the_browser(database: Database) -> None:
    async with running_portal(database) as kit:
        base = str(kit.client.make_url("")).rstrip("/")
        async with chromium() as browser:
            page = await (
                await browser.new_context(viewport={"width": 1280, "height": 900})
            ).new_page()
            await _sign_in(page, base, "olga")
            await page.goto(f"{base}/noc")
            await page.click("a[href='/noc/maintenance']")
            await page.wait_for_load_state("networkidle")
            form = page.locator("#announce-form")
            await form.locator("select[name=link_ids]").select_option(["acme-fra-1"])
            await form.locator("input[name=starts_at]").fill("2026-11-22T06:00")
            await form.locator("input[name=ends_at]").fill("2026-11-22T08:00")
            await form.locator("input[name=description]").fill("Fibre splice on the ring")
            await form.locator("input[name=reference]").fill("CHG-4711")
            await screenshot(page, "maintenance-01-announce")
            await form.locator("button[type=submit]").click()
            await page.wait_for_load_state("networkidle")
            assert "/noc/maintenance/mw-" in page.url
            assert "Announced." in await page.inner_text("main")
            assert "Excluded from availability" in await page.inner_text(".mw-verdict")
            history = await page.inner_text("#mw-history")
            assert "Created by olga" in history

            # Brought forward to Saturday: 66 h of notice, under the 72 h required.
            form = page.locator("#reschedule-form")
            await form.locator("input[name=starts_at]").fill("2026-11-21T06:00")
            await form.locator("input[name=ends_at]").fill("2026-11-21T08:00")
            await form.locator("input[name=note]").fill("crew not available earlier")
            await form.locator("button[type=submit]").click()
            await page.wait_for_load_state("networkidle")
            assert "Rescheduled" in await page.inner_text("main")
            assert "Counts as normal time" in await page.inner_text(".mw-verdict")
            history = await page.inner_text("#mw-history")
            assert "Rescheduled by olga" in history
            assert "2026-11-22 06:00 UTC" in history  # from where it was
            await screenshot(page, "maintenance-02-rescheduled")

            await page.locator("#cancel-form button[type=submit]").click()
            await page.wait_for_load_state("networkidle")
            assert "Cancelled by olga" in await page.inner_text("#mw-history")
            assert await page.locator("#cancel-form").count() == 0

            # The customer sees it on their home page, cancelled.
            customer = await (await browser.new_context()).new_page()
            await _sign_in(customer, base, "alice")
            planned = await customer.inner_text(".planned-maintenance")
            assert "Fibre splice on the ring" in planned
            assert "Cancelled" in planned
            await screenshot(customer, "maintenance-03-customer-home")
