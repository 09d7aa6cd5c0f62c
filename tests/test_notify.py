"""Notifications end to end inside one process: outage events written with the link
states that cause them, routed per customer and for operations, delivered to a real
local webhook receiver and SMTP server, retried, damped and de-duplicated."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from psycopg.rows import tuple_row

from collector import write_samples
from collector.database import Database
from collector.deriver import StateDeriver
from collector.outbox import store_events
from kernel.config import Config, parse_config
from kernel.domain import Event, EventKind, Outcome, Sample
from notify import Dispatcher
from notify.channels import signature, verify
from notify.messages import render
from tests.notify_kit import (
    SECRET,
    WebhookReceiver,
    notifications_yaml,
    smtp_server,
    webhook_receiver,
)
from tests.portal_kit import form_token
from tests.tls_kit import self_signed

T0 = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)

BASE = """
customers:
  - {id: acme, name: Acme Corp, timezone: Europe/Berlin}
  - {id: zeta, name: Zeta GmbH}
links:
  - id: acme-hq
    customer: acme
    description: Acme HQ fibre
    probes: [{id: ping, kind: icmp, host: 127.0.0.1, interval: 30s, confirm: 2}]
  - id: zeta-dc
    customer: zeta
    probes: [{id: ping, kind: icmp, host: 127.0.0.2, interval: 30s, confirm: 2}]
"""


def config(receiver_url: str = "http://127.0.0.1:9", **kwargs: object) -> Config:
    return parse_config(BASE + notifications_yaml(receiver_url, **kwargs))  # type: ignore[arg-type]


def samples(link: str, outcomes: str, start: datetime = T0) -> list[Sample]:
    """One sample per 30 s: u up, d down."""
    kinds = {"u": Outcome.UP, "d": Outcome.DOWN}
    return [
        Sample(link, "ping", start + timedelta(seconds=30 * i), kinds[c], error=None)
        for i, c in enumerate(outcomes)
    ]


async def arrive(deriver: StateDeriver, db: Database, batch: list[Sample]) -> None:
    """As the pipeline does: commit the batch, then derive what it changes."""
    await write_samples(db, batch)
    await deriver.samples_stored(batch)


async def events(db: Database) -> list[tuple[str, str, str | None, dict[str, object]]]:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute("SELECT id, kind, customer_id, payload FROM events ORDER BY occurred_at")
        return list(await cur.fetchall())


async def deliveries(db: Database) -> dict[tuple[str, str], tuple[str, int, str | None]]:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute("SELECT event_id, route_id, status, attempts, note FROM deliveries")
        return {(r[0], r[1]): (r[2], r[3], r[4]) for r in await cur.fetchall()}


def down(link: str, customer: str, at: datetime = T0) -> Event:
    return Event(
        f"link-down:{link}:{at.isoformat()}",
        EventKind.LINK_DOWN,
        at,
        customer,
        link,
        {"down_since": at.isoformat()},
    )


def recovered(link: str, customer: str, at: datetime, until: datetime) -> Event:
    return Event(
        f"link-recovered:{link}:{at.isoformat()}",
        EventKind.LINK_RECOVERED,
        until,
        customer,
        link,
        {
            "down_since": at.isoformat(),
            "down_until": until.isoformat(),
            "down_s": int((until - at).total_seconds()),
            "unmeasured_s": 0,
        },
    )


async def drain(dispatcher: Dispatcher, *, within_s: float = 20) -> None:
    """Run passes until nothing is pending (or fail after `within_s`)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        await dispatcher.run_once()
        db = dispatcher._db
        async with db.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM deliveries WHERE status = 'pending'")
            row = await cur.fetchone()
            cur = await conn.execute("SELECT count(*) FROM events WHERE routed_at IS NULL")
            unrouted = await cur.fetchone()
        if row == (0,) and unrouted == (0,):
            return
        assert asyncio.get_running_loop().time() < deadline, "deliveries still pending"
        await asyncio.sleep(0.05)


# --- events beside the states ---------------------------------------------------------


async def test_an_outage_writes_one_down_and_one_recovery_however_often_it_is_derived(
    database: Database,
) -> None:
    cfg = config()
    live = samples("acme-hq", "uudddu")
    deriver = StateDeriver(database, cfg.links)
    for sample in live:  # as the probes deliver them, one batch each
        await arrive(deriver, database, [sample])
    for sample in live:  # and again: a replay from the spool
        await arrive(deriver, database, [sample])
    await arrive(deriver, database, live)

    found = await events(database)
    outage = T0 + timedelta(seconds=60)
    assert [(e[0], e[1], e[2]) for e in found] == [
        (f"link-down:acme-hq:{outage.isoformat()}", "link-down", "acme"),
        (f"link-recovered:acme-hq:{outage.isoformat()}", "link-recovered", "acme"),
    ]
    assert found[1][3]["down_s"] == 90  # from the first down to the up sample


async def test_an_outage_whose_start_a_late_sample_moves_keeps_its_announced_pair(
    database: Database,
) -> None:
    deriver = StateDeriver(database, config().links)
    live = samples("acme-hq", "uuddd")
    for sample in live:
        await arrive(deriver, database, [sample])
    late = Sample("acme-hq", "ping", T0 + timedelta(seconds=45), Outcome.DOWN)
    await arrive(deriver, database, [late])  # the outage began 15 s earlier after all
    await arrive(deriver, database, samples("acme-hq", "u", T0 + timedelta(seconds=150)))
    announced = (T0 + timedelta(seconds=60)).isoformat()
    assert [e[0] for e in await events(database)] == [
        f"link-down:acme-hq:{announced}",
        f"link-recovered:acme-hq:{announced}",
    ]


async def test_a_single_down_sample_is_not_an_outage_and_writes_nothing(
    database: Database,
) -> None:
    deriver = StateDeriver(database, config().links)
    for sample in samples("acme-hq", "uuduuu"):
        await arrive(deriver, database, [sample])
    assert await events(database) == []


async def test_a_history_loaded_at_once_announces_only_what_is_true_now(
    database: Database,
) -> None:
    deriver = StateDeriver(database, config().links)
    # Two old outages, over: nothing. The zeta link is down at the end: one down.
    await arrive(deriver, database, samples("acme-hq", "uddduuuuddduuuu"))
    await arrive(deriver, database, samples("zeta-dc", "uuuuuuuuuuudddd"))
    assert [e[0] for e in await events(database)] == [
        f"link-down:zeta-dc:{(T0 + timedelta(seconds=330)).isoformat()}"
    ]


TWO_PROBES = """
customers: [{id: acme, name: Acme Corp}]
links:
  - id: acme-hq
    customer: acme
    probes:
      - {id: ping, kind: icmp, host: 127.0.0.1, interval: 5s, confirm: 2}
      - {id: port, kind: snmp, host: "127.0.0.1:161", community: public, interval: 5s,
         confirm: 2, interface: {alias: CID-1001}}
"""


async def test_a_link_with_two_probes_recovers_only_when_its_down_probe_does(
    database: Database,
) -> None:
    """The ICMP probe keeps answering while the SNMP probe sees the customer's port down;
    their samples arrive interleaved, a batch each, as the pipeline writes them. The
    link is down from the port's first down to its first up, and says so exactly once."""
    cfg = parse_config(TWO_PROBES)
    deriver = StateDeriver(database, cfg.links)
    step = timedelta(seconds=5)
    port_down = range(10, 30)  # samples 10..29 of the port are down: 100 s
    events_during: list[list[str]] = []
    for i in range(40):
        ping = Sample("acme-hq", "ping", T0 + i * step, Outcome.UP)
        port_outcome = Outcome.DOWN if i in port_down else Outcome.UP
        port = Sample("acme-hq", "port", T0 + i * step + step / 2, port_outcome, error=None)
        await arrive(deriver, database, [ping])
        await arrive(deriver, database, [port])
        if i in port_down:
            events_during.append([e[1] for e in await events(database)])

    outage_start = T0 + 10 * step + step / 2
    outage_end = T0 + 30 * step + step / 2
    # While the port is down nothing but the down message is written...
    assert all(kinds in ([], ["link-down"]) for kinds in events_during), events_during
    found = await events(database)
    # ...and the outage gives exactly its own down and recovery, with its real times.
    assert [(e[0], e[1]) for e in found] == [
        (f"link-down:acme-hq:{outage_start.isoformat()}", "link-down"),
        (f"link-recovered:acme-hq:{outage_start.isoformat()}", "link-recovered"),
    ]
    assert found[1][3]["down_until"] == outage_end.isoformat()
    assert found[1][3]["down_s"] == 100


# --- routing and isolation ------------------------------------------------------------


async def test_each_customer_gets_only_their_own_events_and_operations_get_all(
    database: Database,
) -> None:
    async with webhook_receiver() as receiver:
        cfg = config(receiver.url)
        blind = Event(
            "monitor-blind:x",
            EventKind.MONITOR_BLIND,
            T0,
            None,
            payload={"count": 1, "links": [{"link_id": "acme-hq", "since": T0.isoformat()}]},
        )
        acme, zeta = down("acme-hq", "acme"), down("zeta-dc", "zeta")
        await store_events(database, [acme, zeta, blind])
        await drain(Dispatcher(database, cfg))

    assert receiver.unique("/acme") == {acme.id}
    assert receiver.unique("/zeta") == {zeta.id}
    assert receiver.unique("/ops") == {acme.id, zeta.id, blind.id}
    assert all(d.signed for d in receiver.accepted)
    body = next(d.body for d in receiver.accepted if d.path == "/acme")
    assert body["customer_id"] == "acme"
    assert body["subject"] == "[Linkwatch] DOWN: Acme HQ fibre (acme-hq)"
    assert "2026-11-18 13:00 CET" in body["summary"]  # the customer's own time zone


def test_the_signature_verifies_only_with_the_secret_and_the_exact_body() -> None:
    body = b'{"id": "x"}'
    header = signature(SECRET, int(datetime.now(UTC).timestamp()), body)
    assert verify(SECRET, header, body)
    assert not verify(SECRET, header, body + b" ")
    assert not verify("another-secret-entirely", header, body)
    stale = signature(SECRET, int(datetime.now(UTC).timestamp()) - 3600, body)
    assert not verify(SECRET, stale, body)


# --- delivery guarantees --------------------------------------------------------------


async def test_a_receiver_failing_for_a_while_then_back_gets_every_event_once(
    database: Database,
) -> None:
    async with webhook_receiver() as receiver:
        receiver.fail_next = 7
        cfg = config(receiver.url)
        sent = [down("acme-hq", "acme", T0 + timedelta(minutes=i)) for i in range(3)]
        await store_events(database, sent)
        await drain(Dispatcher(database, cfg))

    assert receiver.refused == 7
    assert sorted(receiver.ids("/acme")) == sorted(e.id for e in sent)  # each exactly once
    assert sorted(receiver.ids("/ops")) == sorted(e.id for e in sent)
    rows = await deliveries(database)
    assert {status for status, _, _ in rows.values()} == {"sent"}
    assert sum(attempts for _, attempts, _ in rows.values()) == 6 + 7


async def test_a_receiver_that_never_takes_it_ends_failed_after_the_retries(
    database: Database,
) -> None:
    async with webhook_receiver() as receiver:
        receiver.fail_next = 10_000
        cfg = config(receiver.url)
        cfg = cfg.model_copy(
            update={"notifications": cfg.notifications.model_copy(update={"retries": 2})}
        )
        await store_events(database, [down("acme-hq", "acme")])
        await drain(Dispatcher(database, cfg))

    rows = await deliveries(database)
    assert {k[1]: v[:2] for k, v in rows.items()} == {"acme": ("failed", 3), "ops": ("failed", 3)}
    async with database.connection() as conn:
        cur = await conn.execute("SELECT DISTINCT last_error FROM deliveries")
        assert await cur.fetchall() == [("HTTP 503: receiver unavailable",)]


async def test_a_refusal_for_good_fails_at_once(database: Database) -> None:
    async with webhook_receiver() as receiver:
        receiver.fail_next, receiver.fail_status = 10_000, 410
        await store_events(database, [down("acme-hq", "acme")])
        await drain(Dispatcher(database, config(receiver.url)))
    assert {v[:2] for v in (await deliveries(database)).values()} == {("failed", 1)}


# --- flap damping ---------------------------------------------------------------------


def held(cfg: Config, hold: str) -> Config:
    notifications = cfg.notifications.model_copy(
        update={"hold_down": timedelta(seconds=float(hold.rstrip("s")))}
    )
    return cfg.model_copy(update={"notifications": notifications})


async def test_an_outage_over_within_the_hold_down_sends_neither_message(
    database: Database,
) -> None:
    now = [T0]
    async with webhook_receiver() as receiver:
        dispatcher = Dispatcher(database, held(config(receiver.url), "120s"), clock=lambda: now[0])
        await store_events(database, [down("acme-hq", "acme")])
        await dispatcher.run_once()
        now[0] = T0 + timedelta(seconds=60)
        await store_events(database, [recovered("acme-hq", "acme", T0, now[0])])
        await dispatcher.run_once()
        for seconds in (121, 130, 140):
            now[0] = T0 + timedelta(seconds=seconds)
            await dispatcher.run_once()
    assert receiver.accepted == []
    notes = {note for status, _, note in (await deliveries(database)).values()}
    assert notes == {
        "over before its hold-down ended: neither message is sent",
        "its down message was not sent",
    }


async def test_a_longer_outage_sends_down_after_the_hold_down_then_the_recovery(
    database: Database,
) -> None:
    now = [T0]
    async with webhook_receiver() as receiver:
        dispatcher = Dispatcher(database, held(config(receiver.url), "120s"), clock=lambda: now[0])
        await store_events(database, [down("acme-hq", "acme")])
        await dispatcher.run_once()
        assert receiver.accepted == []  # held
        now[0] = T0 + timedelta(seconds=121)
        await dispatcher.run_once()
        assert receiver.ids("/acme") == [down("acme-hq", "acme").id]
        now[0] = T0 + timedelta(seconds=600)
        await store_events(database, [recovered("acme-hq", "acme", T0, now[0])])
        await dispatcher.run_once()
        assert len(receiver.ids("/acme")) == 2
    assert [d.body["kind"] for d in receiver.accepted if d.path == "/acme"] == [
        "link-down",
        "link-recovered",
    ]
    assert "after 10\u00a0min" in receiver.accepted[-1].body["subject"]


async def test_a_down_message_the_receiver_missed_still_goes_before_its_recovery(
    database: Database,
) -> None:
    now = [T0]
    async with webhook_receiver() as receiver:
        receiver.fail_next = 2  # the first try of the down message, on both routes
        dispatcher = Dispatcher(database, config(receiver.url), clock=lambda: now[0])
        await store_events(database, [down("acme-hq", "acme")])
        await dispatcher.run_once()
        assert receiver.accepted == []
        now[0] = T0 + timedelta(seconds=40)  # the outage ended meanwhile
        await store_events(database, [recovered("acme-hq", "acme", T0, now[0])])
        for seconds in (41, 47, 53):
            now[0] = T0 + timedelta(seconds=seconds)
            await dispatcher.run_once()
    assert kinds_of(receiver, "/acme") == ["link-down", "link-recovered"]
    assert kinds_of(receiver, "/ops") == ["link-down", "link-recovered"]


def kinds_of(receiver: WebhookReceiver, path: str) -> list[str]:
    return [d.body["kind"] for d in receiver.accepted if d.path == path]


async def test_a_flapping_link_waits_the_longer_hold_down(database: Database) -> None:
    now = [T0]
    async with webhook_receiver() as receiver:
        dispatcher = Dispatcher(database, held(config(receiver.url), "60s"), clock=lambda: now[0])
        # Two earlier outages within the hour: the third makes the link flapping.
        for minutes in (0, 10):
            start = T0 + timedelta(minutes=minutes)
            await store_events(
                database,
                [down("acme-hq", "acme", start), recovered("acme-hq", "acme", start, start)],
            )
        third = T0 + timedelta(minutes=20)
        now[0] = third
        await store_events(database, [down("acme-hq", "acme", third)])
        await dispatcher.run_once()
        now[0] = third + timedelta(minutes=5)  # past hold_down, within flapping.hold_down
        await dispatcher.run_once()
        assert down("acme-hq", "acme", third).id not in receiver.unique()
        now[0] = third + timedelta(minutes=16)
        await dispatcher.run_once()
    assert down("acme-hq", "acme", third).id in receiver.unique("/acme")


# --- e-mail ---------------------------------------------------------------------------


async def test_an_email_has_plain_text_and_html_and_names_its_event(database: Database) -> None:
    async with webhook_receiver() as receiver, smtp_server() as smtp:
        cfg = config(receiver.url, smtp_port=smtp.port)
        event = recovered("acme-hq", "acme", T0, T0 + timedelta(minutes=12))
        await store_events(database, [event])
        await drain(Dispatcher(database, cfg))
    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert recipients == ["noc@isp.example"]
    assert message["Subject"] == "[Linkwatch] RECOVERED: Acme HQ fibre (acme-hq) after 12\u00a0min"
    assert message["X-Linkwatch-Event-Id"] == event.id
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    text = plain.get_content()
    assert "Outage:" in text
    assert "12\u00a0min" in text
    assert "Acme Corp" in text
    assert "<h1" in html.get_content()
    assert "Acme HQ fibre" in html.get_content()


def test_the_same_event_gets_the_same_message_id() -> None:
    from notify.channels import email_message

    cfg = config(smtp_port=25)
    channel = cfg.notifications.channel("noc-mail")
    event = down("acme-hq", "acme")
    first = email_message(channel, event, render(event, cfg), ["a@b.example"])  # type: ignore[arg-type]
    again = email_message(channel, event, render(event, cfg), ["a@b.example"])  # type: ignore[arg-type]
    assert first["Message-ID"] == again["Message-ID"]
    other = down("acme-hq", "acme", T0 + timedelta(hours=1))
    third = email_message(channel, other, render(other, cfg), ["a@b.example"])  # type: ignore[arg-type]
    assert third["Message-ID"] != first["Message-ID"]


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_email_over_tls_with_a_login(tmp_path: Path, security: str) -> None:
    cert, context = self_signed(tmp_path)
    logins: list[tuple[bytes, bytes]] = []

    def authenticate(
        server: object, session: object, envelope: object, mechanism: str, data: object
    ) -> object:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret")

    options: dict[str, object] = {"authenticator": authenticate}
    if security == "starttls":  # no login, nor anything else, before the upgrade
        options |= {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
    else:  # TLS from the first byte (aiosmtpd cannot tell, so it must not insist)
        options |= {"ssl_context": context, "auth_require_tls": False}
    async with smtp_server(**options) as smtp:
        yaml = (
            BASE
            + f"""
notifications:
  channels:
    - id: mail
      kind: email
      sender: linkwatch@isp.example
      to: [noc@isp.example]
      smtp: {{host: 127.0.0.1, port: {smtp.port}, security: {security},
             username: linkwatch, password: s3cret, ca_file: {cert}}}
"""
        )
        from notify.check import send_test_message

        where = await send_test_message(parse_config(yaml), "mail")
    assert where == f"e-mail to noc@isp.example via 127.0.0.1:{smtp.port}"
    assert logins == [(b"linkwatch", b"s3cret")]
    assert smtp.messages[0][1]["Subject"] == "[Linkwatch] Test message for channel mail"


# --- what operations see on the portal -------------------------------------------------


async def test_operations_see_a_failed_delivery_with_its_error_and_can_retry_it(
    database: Database,
) -> None:
    from tests.portal_kit import CONFIG_TEXT, NOW, portal_config, running_portal

    async with webhook_receiver() as receiver:
        receiver.fail_next = 10_000
        cfg = portal_config(
            CONFIG_TEXT + notifications_yaml(receiver.url).replace("zeta", "globex")
        )
        retries = cfg.notifications.model_copy(update={"retries": 0})
        cfg = cfg.model_copy(update={"notifications": retries})
        event = down("acme-fra-1", "acme", NOW - timedelta(minutes=5))
        await store_events(database, [event])
        await drain(Dispatcher(database, cfg, clock=lambda: NOW))

        async with running_portal(database, cfg, history=None) as kit:
            await kit.sign_in("olga")
            noc = await kit.page("/noc")
            assert "2 notifications could not be delivered." in noc
            page = await kit.page("/noc/notifications")
            assert "Failed 2" in page
            assert "HTTP 503: receiver unavailable" in page
            assert page.count(">Retry</button>") == 2
            response = await kit.client.post(
                "/noc/notifications/retry",
                data={"csrf_token": form_token(page), "event_id": event.id, "route_id": "acme"},
                allow_redirects=False,
            )
            assert response.status == 303
            assert "Pending 1" in await kit.page("/noc/notifications?status=pending")
            bad = await kit.client.get("/noc/notifications?status=lost")
            assert bad.status == 400
            await kit.sign_out()
            await kit.sign_in("alice")  # a customer: no such page
            await kit.page("/noc/notifications", status=404)
        receiver.fail_next = 0
        await drain(Dispatcher(database, cfg, clock=lambda: NOW + timedelta(minutes=1)))
    assert receiver.ids("/acme") == [event.id]  # the retried one, delivered
