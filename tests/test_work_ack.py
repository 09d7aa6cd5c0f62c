"""Acknowledging outages and escalating the ones nobody acknowledges: from the NOC card
(in a browser too) and the API, once per outage, in the operations trail; escalation
chains at their boundaries, out to a local webhook and a local SMTP server; the config
mistakes a chain can have; and the monthly operations report's figures."""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from collector import Database
from collector.acknowledgements import Acknowledgement, outage_key
from collector.state_reads import Incident
from collector.work_log import work_entries
from kernel.config import parse_config
from kernel.domain import Outcome, Sample
from kernel.errors import ConfigError
from notify.escalation import escalations
from portal.api.routes import api_document
from sla.operations import NEVER, OutageResponse, exact_seconds, month_window, report
from tests.browser_kit import chromium
from tests.helpers import text_of
from tests.notify_kit import SECRET, smtp_server, webhook_receiver
from tests.portal_kit import NOW, PASSWORDS, PortalKit, form_token, running_portal
from tests.test_api import conforms, make_token

MIN = timedelta(minutes=1)
DOWN_SINCE = NOW - 25 * MIN  # acme-ber-2's outage in the portal kit's standard history

BASE = """
customers:
  - {id: acme, name: Acme Corp, timezone: Europe/Berlin}
links:
  - id: acme-hq
    customer: acme
    description: Acme HQ fibre
    probes: [{id: ping, kind: icmp, host: 127.0.0.1, interval: 30s, confirm: 2}]
contracts:
  - {id: acme-fibre, customer: acme, links: [acme-hq], target: 99, window: month,
     acknowledge: {within: 15m}}
"""


CHAIN = """\
    - {id: noc, channel: noc, events: [link], escalate_after: 15m, escalate_to: oncall}
    - {id: oncall, channel: oncall, events: [restore], escalate_after: 10m,
       escalate_to: boss}
    - {id: boss, channel: manager, events: [budget]}"""


def chain_yaml(url: str = "http://127.0.0.1:9", smtp_port: int = 9, routes: str = "") -> str:
    """The NOC's own webhook is told of outages; unacknowledged for 15 min they go to the
    on-call's webhook, 10 min more to the manager's e-mail."""
    return f"""
notifications:
  hold_down: 0s
  retry_backoff: 100ms
  channels:
    - {{id: noc, kind: webhook, url: "{url}/noc", secret: {SECRET}, timeout: 2s}}
    - {{id: oncall, kind: webhook, url: "{url}/oncall", secret: {SECRET}, timeout: 2s}}
    - id: manager
      kind: email
      sender: linkwatch@isp.example
      to: [manager@isp.example]
      smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none}}
  routes:
{routes or CHAIN}
"""


# --- escalation, pure ----------------------------------------------------------------


def _running(start: datetime, end: datetime | None = None) -> Incident:
    return Incident("acme-hq", start, end, end, ())


def _due(
    at: datetime, *, acked_at: datetime | None = None, end: datetime | None = None
) -> list[tuple[str, datetime]]:
    cfg = parse_config(BASE + chain_yaml())
    start = NOW
    acks = {}
    if acked_at is not None:
        acks[("acme-hq", start)] = Acknowledgement("acme-hq", start, "olga", acked_at, "")
    found = escalations(
        [_running(start, end)], acks, cfg.notifications.routes, {"acme-hq": "acme"}, at
    )
    return [(str(e.payload["route"]), e.occurred_at) for e in found]


def test_an_outage_escalates_exactly_at_escalate_after_and_not_a_second_sooner() -> None:
    assert _due(NOW + 15 * MIN - timedelta(seconds=1)) == []
    assert _due(NOW + 15 * MIN) == [("oncall", NOW + 15 * MIN)]
    # The manager's turn counts from when the on-call was told.
    assert _due(NOW + 25 * MIN - timedelta(microseconds=1)) == [("oncall", NOW + 15 * MIN)]
    assert sorted(_due(NOW + 25 * MIN)) == [("boss", NOW + 25 * MIN), ("oncall", NOW + 15 * MIN)]


def test_an_acknowledged_or_finished_outage_is_not_escalated() -> None:
    assert _due(NOW + 15 * MIN, acked_at=NOW + 15 * MIN - timedelta(seconds=1)) == []
    assert _due(NOW + 15 * MIN, end=NOW + 15 * MIN - timedelta(seconds=1)) == []
    # Acknowledged after the on-call was told: the manager never is.
    assert _due(NOW + 40 * MIN, acked_at=NOW + 20 * MIN) == []


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        (
            "    - {id: noc, channel: noc, escalate_after: 15m, escalate_to: nobody}",
            "notifications.routes[0].escalate_to: unknown route 'nobody'; defined routes: noc",
        ),
        (
            "    - {id: noc, channel: noc, escalate_after: 15m, escalate_to: oncall}\n"
            "    - {id: oncall, channel: oncall, escalate_after: 5m, escalate_to: noc}",
            "notifications.routes[0].escalate_to: escalation loops: noc -> oncall -> noc; "
            "end the chain at a route without escalate_to",
        ),
        (
            "    - {id: noc, channel: noc, escalate_after: 15m}",
            "notifications.routes[0]: set escalate_after and escalate_to together",
        ),
        (
            "    - {id: noc, channel: noc, escalate_after: 15m, escalate_to: acme}\n"
            "    - {id: acme, channel: oncall, customer: acme}",
            "route 'acme' is a customer's route: escalations are for operations only",
        ),
    ],
)
def test_escalation_mistakes_are_named_with_the_fix(routes: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + chain_yaml(routes=routes), source="chain.yaml")
    assert message in str(caught.value)


# --- escalation, end to end ------------------------------------------------------------


def _history(start: datetime, until: datetime, down_from: datetime) -> list[Sample]:
    out, at = [], start
    while at < until:
        outcome = Outcome.DOWN if at >= down_from else Outcome.UP
        out.append(Sample("acme-hq", "ping", at, outcome))
        at += timedelta(seconds=30)
    return out


async def test_the_chain_reaches_the_on_call_webhook_then_the_managers_mail_once_each(
    database: Database,
) -> None:
    from notify import Dispatcher, Evaluator
    from tests.test_notify import drain
    from tests.test_notify_evaluator import load

    down_from = NOW - 14 * MIN
    clock = [NOW]
    async with webhook_receiver() as receiver, smtp_server() as smtp:
        cfg = parse_config(BASE + chain_yaml(receiver.url, smtp.port))
        await load(database, cfg, _history(NOW - timedelta(hours=1), NOW, down_from))

        async def at(moment: datetime) -> None:
            await load(database, cfg, _history(clock[0], moment + timedelta(seconds=1), down_from))
            clock[0] = moment
            await Evaluator(database, cfg, clock=lambda: clock[0]).evaluate_once()
            await drain(Dispatcher(database, cfg, clock=lambda: clock[0]))

        await at(down_from + 15 * MIN - timedelta(seconds=30))
        assert receiver.ids("/oncall") == []
        await at(down_from + 15 * MIN)
        await at(down_from + 20 * MIN)  # a pass after a restart tells nobody twice
        assert smtp.messages == []
        await at(down_from + 25 * MIN)
        await at(down_from + 26 * MIN)

    start = down_from.isoformat()
    assert receiver.ids("/oncall") == [f"outage-escalated:acme-hq:{start}:oncall"]
    assert [d.body["kind"] for d in receiver.accepted if d.path == "/noc"] == ["link-down"]
    told = next(d.body for d in receiver.accepted if d.path == "/oncall")
    assert told["subject"] == (
        "[Linkwatch] ESCALATED: Acme HQ fibre (acme-hq) down, not acknowledged after 15\u00a0min"
    )
    assert told["occurred_at"] == (down_from + 15 * MIN).isoformat()
    assert len(smtp.messages) == 1
    recipients, mail = smtp.messages[0]
    assert recipients == ["manager@isp.example"]
    assert "not acknowledged after 25" in str(mail["Subject"])
    assert "step 2, after route oncall" in mail.get_body(("plain",)).get_content()


async def test_an_escalation_still_retrying_stops_once_the_outage_is_acknowledged(
    database: Database,
) -> None:
    """The on-call's receiver is down when the escalation comes due; someone acknowledges
    the outage before the next attempt: that attempt is not sent, and the manager is not
    told either."""
    from collector.acknowledgements import acknowledge
    from notify import Dispatcher, Evaluator
    from tests.test_notify_evaluator import load

    down_from = NOW - 14 * MIN
    clock = [NOW]
    async with webhook_receiver() as receiver, smtp_server() as smtp:
        receiver.fail_next = 1_000  # the on-call's receiver refuses everything for now
        cfg = parse_config(BASE + chain_yaml(receiver.url, smtp.port))
        await load(database, cfg, _history(NOW - timedelta(hours=1), NOW, down_from))

        async def at(moment: datetime) -> None:
            await load(database, cfg, _history(clock[0], moment + timedelta(seconds=1), down_from))
            clock[0] = moment
            await Evaluator(database, cfg, clock=lambda: clock[0]).evaluate_once()
            await Dispatcher(database, cfg, clock=lambda: clock[0]).run_once()

        await at(down_from + 15 * MIN)
        assert receiver.refused >= 2  # the NOC's link-down and the escalation: refused
        await acknowledge(
            database, "acme-hq", down_from, by="olga", at=down_from + 16 * MIN, note="on it"
        )
        receiver.fail_next = 0
        for minutes in (17, 26, 30):
            await at(down_from + minutes * MIN)
        async with database.connection() as conn:
            cur = await conn.execute(
                "SELECT status, note FROM deliveries WHERE event_id LIKE 'outage-escalated:%'"
            )
            rows = await cur.fetchall()
    assert receiver.ids("/oncall") == []
    assert smtp.messages == []
    assert rows == [("suppressed", "acknowledged by olga before it got through")]


# --- acknowledging through the portal and the API -------------------------------------


async def test_ops_acknowledge_once_through_the_api_and_a_second_is_refused_with_who(
    database: Database,
) -> None:
    async with running_portal(database) as kit:
        document = api_document()
        olga, ada, alice = [await make_token(kit, n) for n in ("olga", "ada", "alice")]

        async def call(token: str, method: str, path: str, expect: int, **kw: Any) -> Any:
            response = await kit.client.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kw
            )
            body = await response.json()
            assert response.status == expect, body
            conforms(document, method, path, response.status, body)
            return body

        path = f"/api/v1/links/acme-ber-2/outages/{outage_key(DOWN_SINCE)}/ack"
        kit.clock.advance(3 * MIN)
        made = await call(olga, "POST", path, 200, json={"note": "crew dispatched"})
        assert made["acknowledged_by"] == "olga"
        assert made["tta_s"] == 28 * 60
        again = await call(ada, "POST", path, 409, json={})
        assert "acknowledged already, by olga" in again["error"]["message"]
        assert "crew dispatched" in again["error"]["message"]
        # A customer may not acknowledge nor read acknowledgements: as if no such link.
        await call(alice, "POST", path, 404, json={})
        await call(alice, "GET", "/api/v1/links/acme-ber-2/acknowledgements", 404)
        listed = await call(olga, "GET", "/api/v1/links/acme-ber-2/acknowledgements", 200)
        assert [a["note"] for a in listed["items"]] == ["crew dispatched"]
        # No outage began then; a malformed start names no outage either.
        other = f"/api/v1/links/acme-ber-2/outages/{outage_key(DOWN_SINCE - MIN)}/ack"
        missing = await call(olga, "POST", other, 404, json={})
        assert "has no outage that began" in missing["error"]["message"]
        await call(olga, "POST", "/api/v1/links/acme-ber-2/outages/yesterday/ack", 400, json={})
        await call(olga, "POST", path, 400, json={"note": 5})

        trail = await work_entries(database, subject=f"outage:acme-ber-2:{outage_key(DOWN_SINCE)}")
        assert [(e.actor, e.action, e.detail) for e in trail] == [
            ("olga", "outage-acknowledged", "crew dispatched")
        ]
        assert trail[0].customer_ids == ("acme",)


async def _ack_by_form(kit: PortalKit, note: str) -> str:
    noc = await kit.page("/noc")
    card = noc.split('class="outage ', 1)[1].split("</li>", 1)[0]
    assert "not acknowledged yet" in card
    href = card.split('class="button ack-button" href="', 1)[1].split('"', 1)[0]
    form = await kit.page(href.replace("&amp;", "&"))
    response = await kit.client.post(
        href.split("?", 1)[0],
        data={"csrf_token": form_token(form), "note": note, "next": "/noc"},
        allow_redirects=False,
    )
    assert response.status == 303
    return await kit.page("/noc")


async def test_the_noc_card_says_who_acknowledged_and_the_link_page_shows_tta_and_ttr(
    database: Database,
) -> None:
    async with running_portal(database) as kit:
        await kit.sign_in("olga")
        kit.clock.advance(MIN)  # 26 min after the outage began
        # Without the session's token the form is refused and nothing is stored.
        href = f"/links/acme-ber-2/outages/{outage_key(DOWN_SINCE)}/ack"
        refused = await kit.client.post(href, data={"note": "x"}, allow_redirects=False)
        assert refused.status == 403
        noc = await _ack_by_form(kit, "crew dispatched")
        assert "Acknowledged by olga 26 min after it began: crew dispatched" in text_of(noc)
        # The form of an acknowledged outage says who, and a second post is refused.
        again = await kit.client.post(
            href, data={"csrf_token": form_token(noc), "note": "me too"}, allow_redirects=False
        )
        assert again.status == 409
        assert "acknowledged already, by olga" in text_of(await again.text())
        page = await kit.page("/links/acme-ber-2")
        assert "Time to acknowledge" in page
        row = page.split('class="num tta">', 1)[1]
        assert row.startswith("26\u00a0min")
        assert "running" in row.split("</tr>", 1)[0]
        await kit.sign_out()
        await kit.sign_in("alice")  # the customer's own link page shows neither
        assert "Time to acknowledge" not in await kit.page("/links/acme-ber-2")
        await kit.page(href, status=404)


async def test_acknowledging_in_a_browser(database: Database) -> None:
    async with running_portal(database) as kit:
        base = str(kit.client.make_url("")).rstrip("/")
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(f"{base}/login")
            await page.fill("#username", "olga")
            await page.fill("#password", PASSWORDS["olga"])
            await page.click("button[type=submit]")
            await page.wait_for_load_state("networkidle")
            await page.goto(f"{base}/noc")
            await page.click("li.outage a.ack-button")
            await page.fill("input[name=note]", "fibre cut, crew on the way")
            await page.click("form.ack-form button[type=submit]")
            await page.wait_for_load_state("networkidle")
            assert page.url.endswith("/noc")
            card = await page.inner_text("li.outage")
            said = "Acknowledged by olga 25\u00a0min after it began: fibre cut, crew on the way"
            assert said in card


# --- the operations report ------------------------------------------------------------


def _outage(start: datetime, tta: timedelta | None, ttr: timedelta | None) -> OutageResponse:
    ack = None if tta is None else Acknowledgement("acme-hq", start, "olga", start + tta, "")
    return OutageResponse("acme-hq", start, None if ttr is None else start + ttr, ack)


def test_the_report_figures_of_a_known_month() -> None:
    cfg = parse_config(BASE)
    month = month_window("2026-11")
    day = month.start + timedelta(days=3)
    found = [
        _outage(day, 5 * MIN, 30 * MIN),
        _outage(day + timedelta(hours=3), 15 * MIN, 60 * MIN),  # exactly the objective
        _outage(day + timedelta(hours=6), 20 * MIN, 120 * MIN),
        _outage(day + timedelta(hours=9), None, 10 * MIN),  # never acknowledged
        _outage(day + timedelta(hours=12), 2 * MIN, None),  # still running
        _outage(month.start - MIN, MIN, MIN),  # began in October: not this month's
    ]
    figures = report(cfg, month, found)
    fibre = figures.contracts[0]
    assert (fibre.outages, fibre.never_acknowledged, fibre.running) == (5, 1, 1)
    assert (fibre.within_objective, fibre.with_objective) == (3, 5)
    # TTA 2, 5, 15, 20 min and never: the median is 15 min, p90 falls on "never".
    assert fibre.tta.median == Fraction(15 * 60 * 10**6)
    assert fibre.tta.p90 is NEVER
    assert fibre.tta.worst is NEVER
    # TTR 10, 30, 60, 120 min: median 45 min, p90 at rank 2.7 = 60 + 0.7 of 60 min.
    assert exact_seconds(fibre.ttr.median) == "2700"
    assert exact_seconds(fibre.ttr.p90) == "6120"
    assert exact_seconds(fibre.ttr.worst) == "7200"
    assert figures.overall.outages == 5


def test_the_report_is_exact_below_a_microsecond() -> None:
    cfg = parse_config(BASE)
    month = month_window("2026-11")
    start = month.start + timedelta(days=1)
    found = [
        _outage(start, timedelta(microseconds=1), MIN),
        _outage(start + MIN, timedelta(microseconds=2), MIN),
    ]
    assert exact_seconds(report(cfg, month, found).overall.tta.median) == "0.0000015"


async def test_the_operations_page_and_api_give_the_months_figures(database: Database) -> None:
    async with running_portal(database) as kit:
        token = await make_token(kit, "olga")
        kit.clock.advance(MIN)
        answer = await kit.client.post(
            f"/api/v1/links/acme-ber-2/outages/{outage_key(DOWN_SINCE)}/ack",
            headers={"Authorization": f"Bearer {token}"},
            json={},
        )
        assert answer.status == 200
        response = await kit.client.get(
            "/api/v1/reports/operations",
            params={"month": "2026-11"},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = await response.json()
        conforms(api_document(), "GET", "/api/v1/reports/operations", 200, body)
        ber = next(c for c in body["contracts"] if c["name"] == "acme-ber-silver")
        assert (ber["outages"], ber["running"], ber["tta_median_s"]) == (1, 1, "1560")
        bad = await kit.client.get(
            "/api/v1/reports/operations",
            params={"month": "2026-13"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert bad.status == 400
        await kit.sign_in("olga")
        page = text_of(await kit.page("/noc/operations?month=2026-11"))
        assert "acme-ber-silver" in page
        assert "Overall each contract's 1 1 — 26 min 26 min 26 min" in page
