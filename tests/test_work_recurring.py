"""Recurring maintenance: a rule read in its zone, each occurrence announced at its lead
time (never earlier, late after a gap), the announcement reaching the customers' routes,
the SLA judging the notice each had, config mistakes, and the ops page and API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from collector import Database, maintenance_windows
from collector.recurring import (
    SeriesError,
    all_series,
    announce_due,
    cancel_series,
    next_due,
    skip_occurrence,
    sync_config_series,
)
from collector.work_log import work_entries
from kernel.config import parse_config
from kernel.config.recurring import notice_warnings
from kernel.errors import ConfigError
from kernel.recurrence import MaintenanceSeries, Recurrence, RecurrenceError
from notify import Dispatcher, Evaluator
from sla.compute import decide_maintenance
from tests.browser_kit import chromium, needs_browser
from tests.notify_kit import notifications_yaml, webhook_receiver
from tests.portal_kit import PASSWORDS, running_portal
from tests.test_api import make_token
from tests.test_config import BASE
from tests.test_notify import BASE as NOTIFY_BASE
from tests.test_notify import drain

BERLIN = "Europe/Berlin"
UTC0 = datetime(2027, 1, 1, tzinfo=UTC)


def rule(text: str, start: datetime, zone: str = BERLIN) -> Recurrence:
    return Recurrence.parse(text, start, zone)


# --- the rule ---------------------------------------------------------------------------


def test_first_tuesday_stays_at_two_local_across_the_dst_change() -> None:
    first_tuesday = rule("FREQ=MONTHLY;BYDAY=1TU", datetime(2027, 1, 5, 2, 0))
    starts = first_tuesday.between(UTC0, datetime(2027, 5, 1, tzinfo=UTC))
    # 02:00 CET is 01:00 UTC; from the end of March 02:00 CEST is 00:00 UTC.
    assert starts == [
        datetime(2027, 1, 5, 1, 0, tzinfo=UTC),
        datetime(2027, 2, 2, 1, 0, tzinfo=UTC),
        datetime(2027, 3, 2, 1, 0, tzinfo=UTC),
        datetime(2027, 4, 6, 0, 0, tzinfo=UTC),
    ]


def test_a_wall_time_the_clock_skips_is_the_end_of_the_gap() -> None:
    sundays = rule("FREQ=WEEKLY;BYDAY=SU", datetime(2027, 3, 21, 2, 30))
    starts = sundays.between(datetime(2027, 3, 20, tzinfo=UTC), datetime(2027, 4, 5, tzinfo=UTC))
    assert starts == [
        datetime(2027, 3, 21, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2027, 3, 28, 1, 0, tzinfo=UTC),  # 02:30 does not exist: 03:00 CEST
        datetime(2027, 4, 4, 0, 30, tzinfo=UTC),  # 02:30 CEST
    ]


def test_until_and_count_end_the_series_and_exdates_leave_one_out() -> None:
    until = rule("FREQ=MONTHLY;BYDAY=1TU;UNTIL=20270302T010000Z", datetime(2027, 1, 5, 2, 0))
    assert len(until.between(UTC0, datetime(2028, 1, 1, tzinfo=UTC))) == 3  # UNTIL inclusive
    count = rule("FREQ=MONTHLY;BYDAY=1TU;COUNT=2", datetime(2027, 1, 5, 2, 0))
    assert len(count.between(UTC0, datetime(2028, 1, 1, tzinfo=UTC))) == 2
    february = datetime(2027, 2, 2, 1, 0, tzinfo=UTC)
    left = count.between(UTC0, datetime(2028, 1, 1, tzinfo=UTC), skipped=[february])
    assert left == [datetime(2027, 1, 5, 1, 0, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FREQ=MONTHY", "FREQ='MONTHY' is not allowed; maintenance recurs DAILY, WEEKLY, "),
        ("FREQ=HOURLY", "FREQ='HOURLY' is not allowed"),
        ("BYDAY=1TU", "the rule has no FREQ"),
        ("FREQ=MONTHLY;BYDAY=9XX", "is not an RFC 5545 RRULE (invalid 'BYDAY': 9XX)"),
        ("FREQ=MONTHLY;COUNT=2;UNTIL=20270101T000000Z", "COUNT and UNTIL are given together"),
        ("FREQ=MONTHLY;UNTIL=20271231T000000", "has no Z; RFC 5545 writes it in UTC"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "has no occurrence in the 4 years"),
        ("DTSTART:20270101T000000\nRRULE:FREQ=DAILY", "write the rule on one line"),
    ],
)
def test_a_rule_that_is_no_schedule_says_why(text: str, message: str) -> None:
    with pytest.raises(RecurrenceError) as info:
        rule(text, datetime(2027, 1, 5, 2, 0))
    assert message in str(info.value)


# --- the config -------------------------------------------------------------------------

SERIES = {
    "id": "patching",
    "description": "Core router patching",
    "reference": "CHG-1234",
    "links": ["acme-hq"],
    "start": "2027-01-05T02:00",
    "timezone": BERLIN,
    "duration": "2h",
    "rrule": "FREQ=MONTHLY;BYDAY=1TU",
    "announce": "7d",
}


def with_series(**changes: Any) -> str:
    data = {k: v for k, v in BASE.items() if k != "maintenance"}
    data["recurring"] = [{**SERIES, **changes}]
    return yaml.safe_dump(data)


def problems(**changes: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(with_series(**changes), environ={})
    return [f"{p.path}: {p.message}" for p in info.value.problems]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"rrule": "FREQ=MONTLY"}, "recurring[0]: rrule: FREQ='MONTLY' is not allowed"),
        ({"timezone": "Mars/Olympus"}, "recurring[0].timezone: 'Mars/Olympus' is not a known"),
        ({"duration": "0s"}, "recurring[0].duration: 0s is not positive"),
        ({"start": "2027-01-05T02:00:00+01:00"},
         "recurring[0].start: 2027-01-05T02:00:00+01:00 has a UTC offset"),
        ({"skip": ["2027-01-06T02:00"]},
         "recurring[0]: skip 2027-01-06T02:00:00 is not an occurrence"),
        ({"rrule": "FREQ=DAILY", "duration": "25h"},
         "recurring[0]: duration 1d1h is longer than the 1d"),
        ({"links": ["nope"]}, "recurring[0].links[0]: unknown link 'nope'"),
    ],
)  # fmt: skip
def test_config_mistakes_name_the_path_and_what_is_allowed(
    changes: dict[str, Any], expected: str
) -> None:
    found = problems(**changes)
    assert any(p.startswith(expected) for p in found), found


def test_check_config_warns_of_a_lead_time_not_beyond_the_notice() -> None:
    short = parse_config(with_series(announce="72h"), environ={})
    (warning,) = notice_warnings(short)
    assert warning.startswith(
        "recurring[0] patching: announce 3d is not longer than the maintenance_notice of gold (3d)"
    )
    assert list(notice_warnings(parse_config(with_series(announce="4d"), environ={}))) == []
    # Any lead time is allowed: zero too.
    assert parse_config(with_series(announce="0s"), environ={}).recurring[0].announce == timedelta(
        0
    )


# --- announcing ---------------------------------------------------------------------------


def series(**changes: Any) -> MaintenanceSeries:
    config = parse_config(with_series(**changes), environ={})
    return config.recurring[0].to_series()


JAN = datetime(2027, 1, 5, 1, 0, tzinfo=UTC)  # the first occurrence, 02:00 Berlin


async def test_an_occurrence_is_announced_at_its_lead_time_and_once(database: Database) -> None:
    await sync_config_series(database, [series()], now=JAN - timedelta(days=30))
    before = JAN - timedelta(days=7, microseconds=1)
    assert await announce_due(database, before) == []
    assert next_due(await all_series(database), before) == JAN - timedelta(days=7)
    at = JAN - timedelta(days=7)
    assert await announce_due(database, at) == ["patching@2027-01-05T01:00:00Z"]
    assert await announce_due(database, at + timedelta(minutes=1)) == []  # once
    (window,) = await maintenance_windows(database, JAN, JAN + timedelta(hours=2))
    assert window.announced_at == at
    assert window.ends_at == JAN + timedelta(hours=2)
    assert window.description == "Core router patching [CHG-1234]"
    (entry,) = await work_entries(database, subject="maintenance:patching@2027-01-05T01:00:00Z")
    assert (entry.actor, entry.action) == ("linkwatch", "maintenance-announced")
    assert entry.detail == "occurrence of series patching, 7d ahead"
    # Exactly the lead time is exactly the notice: excluded under a 7-day notice.
    assert decide_maintenance([window], timedelta(days=7))[0].excluded


async def test_after_a_gap_an_occurrence_is_announced_late_and_judged_so(
    database: Database,
) -> None:
    await sync_config_series(database, [series()], now=JAN - timedelta(days=30))
    # The daemon was away from 8 days before until 2 days before the work.
    back = JAN - timedelta(days=2)
    assert await announce_due(database, back) == ["patching@2027-01-05T01:00:00Z"]
    (window,) = await maintenance_windows(database, JAN, JAN + timedelta(hours=2))
    assert window.announced_at == back  # never earlier than it really was
    decision = decide_maintenance([window], timedelta(hours=72))[0]
    assert not decision.excluded
    assert decide_maintenance([window], timedelta(hours=48))[0].excluded
    (entry,) = await work_entries(database, subject=f"maintenance:{window.id}")
    assert entry.detail == "occurrence of series patching, 2d ahead (due 7d ahead: announced late)"
    # An occurrence that ended while the daemon was away is not announced at all.
    await announce_due(database, datetime(2027, 3, 2, 4, 0, tzinfo=UTC))
    found = await maintenance_windows(database, UTC0, datetime(2027, 4, 1, tzinfo=UTC))
    assert [w.id for w in found] == ["patching@2027-01-05T01:00:00Z"]


async def test_skipping_and_cancelling(database: Database) -> None:
    await sync_config_series(database, [series()], now=JAN - timedelta(days=30))
    now = JAN - timedelta(days=3)
    await announce_due(database, now)
    (stored,) = await all_series(database)
    withdrawn = await skip_occurrence(database, stored, JAN, by="olga", reason="freeze", now=now)
    assert withdrawn
    (window,) = await maintenance_windows(database, JAN, JAN + timedelta(hours=2))
    assert window.cancelled_at == now
    assert window.withdrawn
    feb = datetime(2027, 2, 2, 1, 0, tzinfo=UTC)
    (stored,) = await all_series(database)
    assert not await skip_occurrence(database, stored, feb, by="olga", reason="", now=now)
    assert await announce_due(database, feb - timedelta(days=1)) == []  # skipped: never
    with pytest.raises(SeriesError, match="is not an occurrence"):
        await skip_occurrence(
            database, stored, feb + timedelta(hours=1), by="o", reason="", now=now
        )
    await cancel_series(database, "patching", by="olga", reason="contract ended", now=now)
    with pytest.raises(SeriesError, match="cancelled already"):
        await cancel_series(database, "patching", by="olga", reason="", now=now)
    assert await announce_due(database, datetime(2027, 3, 1, tzinfo=UTC)) == []
    actions = [(e.actor, e.action) for e in await work_entries(database)]
    assert actions == [
        ("olga", "maintenance-series-cancelled"),
        ("olga", "maintenance-occurrence-skipped"),
        ("olga", "maintenance-occurrence-skipped"),
        ("linkwatch", "maintenance-announced"),
    ]


async def test_the_announcement_reaches_the_customers_webhook(database: Database) -> None:
    async with webhook_receiver() as receiver:
        yaml_text = NOTIFY_BASE + notifications_yaml(receiver.url)
        config = parse_config(yaml_text)
        await sync_config_series(database, [series()], now=JAN - timedelta(days=30))
        at = JAN - timedelta(days=7)
        await announce_due(database, at)
        await Evaluator(database, config, clock=lambda: at).evaluate_once()
        await drain(Dispatcher(database, config, clock=lambda: at))
    sent = [d.body for d in receiver.accepted if d.path == "/acme"]
    assert [b["kind"] for b in sent] == ["maintenance-announced"]
    assert "Core router patching [CHG-1234]" in str(sent[0])
    assert [d for d in receiver.accepted if d.path == "/zeta"] == []


# --- the API and the page -------------------------------------------------------------------

BODY = {
    "id": "fra-patching",
    "description": "Frankfurt PoP software update",
    "reference": "CHG-77",
    "links": ["acme-fra-1"],
    "start": "2026-12-01T02:00",
    "timezone": BERLIN,
    "duration": "2h",
    "rrule": "FREQ=MONTHLY;BYDAY=1TU",
    "announce": "14d",
}


async def test_ops_create_a_series_through_the_api_and_customers_see_the_occurrence(
    database: Database,
) -> None:
    async with running_portal(database, history=None) as kit:
        tokens = {name: await make_token(kit, name) for name in ("olga", "alice", "gus", "bill")}

        async def call(name: str, method: str, path: str, body: Any = None) -> Any:
            headers = {"Authorization": f"Bearer {tokens[name]}"}
            response = await kit.client.request(
                method, "/api/v1" + path, json=body, headers=headers
            )
            return response.status, await response.json()

        status, made = await call("olga", "POST", "/maintenance/series", BODY)
        assert status == 200, made
        # 2026-12-01 02:00 Berlin is 13 days after NOW: inside the 14-day lead, announced now.
        first = made["upcoming"][0]
        assert first == {
            "id": "fra-patching@2026-12-01T01:00:00Z",
            "starts_at": "2026-12-01T01:00:00+00:00",
            "ends_at": "2026-12-01T03:00:00+00:00",
            "announce_at": "2026-11-18T12:00:00+00:00",
            "state": "announced late",
        }
        assert made["upcoming"][1]["state"] == "to be announced"
        assert made["upcoming"][1]["announce_at"] == "2026-12-22T01:00:00+00:00"  # 14 d ahead
        status, again = await call("olga", "POST", "/maintenance/series", BODY)
        assert (status, again["error"]["message"]) == (
            409,
            "a series 'fra-patching' exists already; choose another id",
        )
        status, bad = await call(
            "olga", "POST", "/maintenance/series", {**BODY, "id": "x", "rrule": "FREQ=MONTLY"}
        )
        assert status == 400
        assert bad["error"]["message"].startswith("series: rrule: FREQ='MONTLY' is not allowed")
        status, bad = await call(
            "olga", "POST", "/maintenance/series", {**BODY, "id": "y", "links": []}
        )
        assert (
            bad["error"]["message"]
            == "say what the work covers: links, customers, or everything set to true"
        )
        for name in ("alice", "bill"):
            assert (await call(name, "POST", "/maintenance/series", {**BODY, "id": "z"}))[0] == 404
            assert (await call(name, "GET", "/maintenance/series"))[0] == 404
        # Customers read the announced occurrence as maintenance, only their own.
        _, alice = await call("alice", "GET", "/maintenance")
        assert [w["id"] for w in alice["items"]] == ["fra-patching@2026-12-01T01:00:00Z"]
        _, gus = await call("gus", "GET", "/maintenance")
        assert gus["items"] == []
        status, skipped = await call(
            "olga", "POST", "/maintenance/series/fra-patching/skip",
            {"starts_at": "2026-12-01T01:00:00+00:00", "reason": "change freeze"},
        )  # fmt: skip
        assert status == 200
        assert skipped["skipped"] == ["2026-12-01T01:00:00+00:00"]
        status, cancelled = await call(
            "olga", "POST", "/maintenance/series/fra-patching/cancel", {}
        )
        assert status == 200
        assert cancelled["cancelled_at"] == "2026-11-18T12:00:00+00:00"
        assert (await call("olga", "POST", "/maintenance/series/nope/cancel", {}))[0] == 404


async def test_page_is_for_staff_who_plan_the_work(database: Database) -> None:
    async with running_portal(database, history=None) as kit:
        for name, status in (("alice", 404), ("bill", 404), ("olga", 200), ("ada", 200)):
            await kit.login(name)
            await kit.page("/noc/maintenance/series", status)
            kit.client.session.cookie_jar.clear()
        # A form without its CSRF token is refused.
        await kit.login("olga")
        response = await kit.client.post(
            "/noc/maintenance/series", data={**BODY, "links": "acme-fra-1"}, allow_redirects=False
        )
        assert response.status == 403
        assert await all_series(database) == []


@needs_browser
async def test_ops_create_skip_and_cancel_a_series_in_the_browser(database: Database) -> None:
    async with running_portal(database, history=None) as kit:
        base = str(kit.client.make_url("")).rstrip("/")
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(f"{base}/login")
            await page.fill("#username", "olga")
            await page.fill("#password", PASSWORDS["olga"])
            await page.click("button[type=submit]")
            await page.wait_for_load_state("networkidle")
            await page.goto(f"{base}/noc/maintenance/series")
            assert "No recurring maintenance yet." in await page.inner_text("main")
            form = page.locator("form.series-form")
            await form.locator("input[name=id]").fill("fra-patching")
            await form.locator("input[name=description]").fill("Frankfurt PoP software update")
            await form.locator("select[name=links]").select_option(["acme-fra-1"])
            await form.locator("input[name=start]").fill("2026-12-01T02:00")
            await form.locator("input[name=timezone]").fill(BERLIN)
            await form.locator("input[name=duration]").fill("2h")
            await form.locator("input[name=rrule]").fill("FREQ=MONTHLY;BYDAY=1TU")
            await form.locator("button[type=submit]").click()
            await page.wait_for_load_state("networkidle")
            text = await page.inner_text("main")
            assert "The series is stored" in text
            schedule = "2026-12-01 02:00 Europe/Berlin, 2\u00a0h each, announced 14\u00a0d ahead"
            assert f"FREQ=MONTHLY;BYDAY=1TU from {schedule}" in text
            # Times as on every staff page: UTC with its zone, each a <time>.
            cells = await page.locator("tr.occurrence").first.locator("td").all_inner_texts()
            assert cells[:4] == [
                "Tue 2026-12-01 02:00 CET",
                "2026-12-01 01:00 UTC",
                "2026-12-01 03:00 UTC",
                "announced late 2026-11-18 12:00 UTC",  # 13 days ahead of a 14-day lead
            ]
            starts = page.locator("tr.occurrence td[data-label=Starts] time").first
            assert await starts.get_attribute("datetime") == "2026-12-01T01:00:00+00:00"
            row = page.locator("tr.occurrence").first
            await row.locator("input[name=reason]").fill("change freeze")
            await row.locator("button").click()
            await page.wait_for_load_state("networkidle")
            assert "its announcement withdrawn" in await page.inner_text("main")
            await page.locator("button", has_text="Cancel the series").click()
            await page.wait_for_load_state("networkidle")
            assert "no further occurrence will be announced" in await page.inner_text("main")
            # A bad rule is refused with what is allowed, and nothing is stored.
            await page.goto(f"{base}/noc/maintenance/series")
            form = page.locator("form.series-form")
            await form.locator("input[name=id]").fill("other")
            await form.locator("input[name=everything]").check()
            await form.locator("input[name=start]").fill("2026-12-01T02:00")
            await form.locator("input[name=duration]").fill("2h")
            await form.locator("input[name=rrule]").fill("FREQ=HOURLY")
            await form.locator("button[type=submit]").click()
            await page.wait_for_load_state("networkidle")
            assert "FREQ='HOURLY' is not allowed" in await page.inner_text("main")
    entries = await work_entries(database)
    assert {e.action for e in entries} == {
        "maintenance-series-created",
        "maintenance-series-cancelled",
        "maintenance-occurrence-skipped",
        "maintenance-announced",
    }
    assert [s.id for s in await all_series(database)] == ["fra-patching"]
