"""Events that follow from time passing, on the embedded database: error-budget levels
before a breach, the breach notice with its credit (in the contract's own words),
maintenance announced, started and over, and links the monitor cannot see."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from collector import sync_maintenance, upsert_maintenance, write_samples
from collector.database import Database
from collector.deriver import StateDeriver
from collector.site_guard import CanaryResult, SiteStatus
from collector.site_record import SiteRecord
from kernel.config import Config, SiteConfig, parse_config
from kernel.domain import Event, EventKind, MaintenanceWindow, Outcome, Sample
from notify import Dispatcher, Evaluator
from notify.messages import render
from sla.ledger import TimeRange, refresh_ledger
from tests.helpers import REPO
from tests.notify_kit import SECRET, notifications_yaml, webhook_receiver
from tests.test_notify import BASE, drain, events

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # Wednesday of 2026-W47
W46 = datetime(2026, 11, 8, 23, 0, tzinfo=UTC)  # Monday 2026-11-09 00:00 in Berlin
W47 = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)

CONTRACT = """
contracts:
  - id: acme-fibre
    customer: acme
    links: [acme-hq]
    target: 99.5
    window: week
    fee: 1000
    currency: EUR
    credit: {per_step: 5}
    breach_notice: >-
      Dear {{ customer }}, {{ subject }} reached {{ availability }} in {{ window }}
      against {{ target }}. You will receive {{ credit }}: {{ credit_when }}.
"""


def config(url: str) -> Config:
    return parse_config(BASE + CONTRACT + notifications_yaml(url))


def history(*outages: tuple[datetime, timedelta]) -> list[Sample]:
    """acme-hq every 30 s from the start of W46 to NOW, down during `outages`."""
    out, at = [], W46
    while at < NOW:
        is_down = any(start <= at < start + length for start, length in outages)
        out.append(Sample("acme-hq", "ping", at, Outcome.DOWN if is_down else Outcome.UP))
        at += timedelta(seconds=30)
    return out


async def load(db: Database, cfg: Config, samples: list[Sample]) -> None:
    await write_samples(db, samples)
    await StateDeriver(db, cfg.links).samples_stored(samples)


async def test_budget_levels_come_before_the_breach_and_only_the_highest_is_sent(
    database: Database,
) -> None:
    # 45 minutes down this week: 89 % of the 50.4 minutes a 99.5 % week allows.
    async with webhook_receiver() as receiver:
        cfg = config(receiver.url)
        await load(database, cfg, history((W47 + timedelta(days=1), timedelta(minutes=45))))
        evaluator = Evaluator(database, cfg, clock=lambda: NOW)
        await evaluator.evaluate_once()
        assert await evaluator.evaluate_once() == 0  # the same facts: nothing new
        await drain(Dispatcher(database, cfg, clock=lambda: NOW))

    budget = [e for e in await events(database) if e[1] == "budget"]
    assert sorted(e[0] for e in budget) == [
        "budget:acme-fibre:acme-hq:2026-W47:50",
        "budget:acme-fibre:acme-hq:2026-W47:80",
    ]
    sent = [d.body for d in receiver.accepted if d.path == "/acme"]
    assert [b["id"] for b in sent] == ["budget:acme-fibre:acme-hq:2026-W47:80"]
    assert sent[0]["subject"].startswith("[Linkwatch] 80 % of the error budget used")
    assert "5\u00a0min of 50\u00a0min left" in sent[0]["summary"]
    assert receiver.unique("/zeta") == set()


async def test_a_missed_week_sends_the_contracts_notice_with_the_credit(
    database: Database,
) -> None:
    async with webhook_receiver() as receiver:
        cfg = config(receiver.url)
        await load(database, cfg, history((W46 + timedelta(days=2), timedelta(hours=2))))
        await refresh_ledger(database, cfg, TimeRange(W46, NOW), NOW)
        await Evaluator(database, cfg, clock=lambda: NOW).evaluate_once()
        await drain(Dispatcher(database, cfg, clock=lambda: NOW))

    sent = [d.body for d in receiver.accepted if d.path == "/acme"]
    assert [b["kind"] for b in sent] == ["sla-breached"]
    notice = sent[0]
    assert notice["summary"] == (
        "Dear Acme Corp, Acme HQ fibre (acme-hq) reached 98.809\u00a0% in 2026-W46 "
        "against 99.5\u00a0%. You will receive 100.00\u00a0EUR: it will appear on your "
        "next invoice once billing has approved it."
    )
    assert notice["data"]["credit_amount"] == "100.00"
    assert notice["facts"]["Measured availability"] == "98.809\u00a0%"
    assert receiver.unique("/ops") == {notice["id"]}


async def test_maintenance_is_announced_started_and_finished_to_whom_it_concerns(
    database: Database,
) -> None:
    windows = [
        MaintenanceWindow(
            "fibre-swap",
            NOW + timedelta(days=3),
            NOW + timedelta(days=3, hours=2),
            NOW - timedelta(days=1),
            "Fibre swap",
            link_ids=("acme-hq",),
        ),
        MaintenanceWindow(
            "core-upgrade",
            NOW - timedelta(hours=1),
            NOW + timedelta(hours=1),
            NOW - timedelta(days=9),
            "Core",
        ),
        MaintenanceWindow(
            "zeta-dc-power",
            NOW - timedelta(hours=3),
            NOW - timedelta(minutes=30),
            NOW - timedelta(days=9),
            "Power",
            customer_ids=("zeta",),
        ),
        MaintenanceWindow(
            "long-ago", NOW - timedelta(days=2), NOW - timedelta(days=1), NOW - timedelta(days=9)
        ),
    ]
    async with webhook_receiver() as receiver:
        cfg = config(receiver.url)
        await upsert_maintenance(database, windows, source="config")
        await Evaluator(database, cfg, clock=lambda: NOW).evaluate_once()
        await drain(Dispatcher(database, cfg, clock=lambda: NOW))

    def kinds(path: str) -> list[tuple[str, str]]:
        return sorted(
            (d.body["kind"], d.body["data"]["maintenance_id"])
            for d in receiver.accepted
            if d.path == path
        )

    assert kinds("/acme") == [
        ("maintenance-announced", "fibre-swap"),
        ("maintenance-started", "core-upgrade"),
    ]
    assert kinds("/zeta") == [
        ("maintenance-finished", "zeta-dc-power"),
        ("maintenance-started", "core-upgrade"),
    ]
    assert kinds("/ops") == [  # once each, not once per customer
        ("maintenance-announced", "fibre-swap"),
        ("maintenance-finished", "zeta-dc-power"),
        ("maintenance-started", "core-upgrade"),
    ]
    announced = next(
        d.body
        for d in receiver.accepted
        if d.path == "/acme" and d.body["kind"] == "maintenance-announced"
    )
    assert announced["summary"] == (
        "Maintenance on Acme HQ fibre (acme-hq) is planned: Fibre swap, from "
        "2026-11-21 13:00 CET until 2026-11-21 15:00 CET. For contract acme-fibre it is "
        "excluded from the availability measured: it was announced 4\u00a0d ahead, and the "
        "contract asks for 3\u00a0d. Time past the announced end counts normally."
    )


async def test_a_cancellation_is_told_to_whoever_heard_of_the_work_and_nobody_else(
    database: Database,
) -> None:
    told = MaintenanceWindow(
        "fibre-swap", NOW + timedelta(days=3), NOW + timedelta(days=3, hours=2),
        NOW - timedelta(days=1), "Fibre swap", link_ids=("acme-hq",),
    )  # fmt: skip
    # Put in and taken out again between two passes: announced to nobody.
    unheard = MaintenanceWindow(
        "typo", NOW + timedelta(days=4), NOW + timedelta(days=4, hours=1), NOW, "Typo",
        link_ids=("acme-hq",),
    )  # fmt: skip
    clock = [NOW]
    async with webhook_receiver() as receiver:
        cfg = config(receiver.url)
        evaluator = Evaluator(database, cfg, clock=lambda: clock[0])
        dispatcher = Dispatcher(database, cfg, clock=lambda: clock[0])
        await sync_maintenance(database, [told], source="config", now=NOW)
        await evaluator.evaluate_once()
        await drain(dispatcher)
        clock[0] = NOW + timedelta(minutes=5)
        await sync_maintenance(database, [told, unheard], source="config", now=clock[0])
        await sync_maintenance(database, [], source="config", now=clock[0])
        await evaluator.evaluate_once()
        await drain(dispatcher)
        assert await evaluator.evaluate_once() == 0  # told once

    sent = sorted(
        (d.path, d.body["kind"], d.body["data"]["maintenance_id"]) for d in receiver.accepted
    )
    assert sent == [
        ("/acme", "maintenance-announced", "fibre-swap"),
        ("/acme", "maintenance-cancelled", "fibre-swap"),
        ("/ops", "maintenance-announced", "fibre-swap"),
        ("/ops", "maintenance-cancelled", "fibre-swap"),
    ]
    cancelled = next(d.body for d in receiver.accepted if d.body["kind"] == "maintenance-cancelled"
                     and d.path == "/acme")  # fmt: skip
    assert cancelled["summary"] == (
        "Maintenance on Acme HQ fibre (acme-hq) planned from 2026-11-21 13:00 CET until "
        "2026-11-21 15:00 CET has been cancelled: Fibre swap. No work will be done, and the "
        "time counts normally."
    )


async def test_a_maintenance_notice_says_per_contract_whether_it_counts(
    database: Database,
) -> None:
    """Announced 3.5 minutes ahead: too late for a contract that asks 72 h of notice, in
    time for one that asks 1 minute; a redundant pair with one link in the work counts
    it too. The customer and operations are told which is which."""
    contracts = (
        CONTRACT
        + """\
  - {id: acme-lab, customer: acme, links: [acme-hq], target: 99.0, window: month,
     maintenance_notice: 1m}
  - {id: acme-pair, customer: acme, links: [acme-hq, acme-dr], group: redundant,
     target: 99.9, window: month, maintenance_notice: 1m}
"""
    )
    links = BASE.replace(
        "  - id: zeta-dc",
        "  - id: acme-dr\n    customer: acme\n"
        "    probes: [{id: ping, kind: icmp, host: 127.0.0.3, interval: 30s}]\n  - id: zeta-dc",
    )
    starts = NOW + timedelta(minutes=2)
    window = MaintenanceWindow(
        "cpe-swap",
        starts,
        starts + timedelta(hours=1),
        starts - timedelta(minutes=3, seconds=30),
        "CPE swap",
        link_ids=("acme-hq",),
    )
    async with webhook_receiver() as receiver:
        cfg = parse_config(links + contracts + notifications_yaml(receiver.url))
        await upsert_maintenance(database, [window], source="config")
        await Evaluator(database, cfg, clock=lambda: NOW).evaluate_once()
        await drain(Dispatcher(database, cfg, clock=lambda: NOW))

    (acme,) = [d.body for d in receiver.accepted if d.path == "/acme"]
    ahead = "announced 3\u00a0min ahead"
    assert acme["summary"] == (
        "Maintenance on Acme HQ fibre (acme-hq) is planned: CPE swap, from 2026-11-18 13:02 "
        "CET until 2026-11-18 14:02 CET. For contract acme-fibre it counts as normal time, so "
        f"downtime during it counts against the SLA: it was {ahead}, and the contract asks "
        "for 3\u00a0d to exclude it. For contract acme-lab it is excluded from the "
        f"availability measured: it was {ahead}, and the contract asks for 1\u00a0min. Time "
        "past the announced end counts normally. For contract acme-pair it counts as normal "
        "time: only some of its redundant links are in this work, and the service stays "
        "available while another is up."
    )
    assert acme["facts"]["SLA of acme-fibre"] == f"normal time ({ahead}, 3\u00a0d required)"
    assert acme["facts"]["SLA of acme-lab"] == f"excluded ({ahead}, 1\u00a0min required)"
    (ops,) = [d.body for d in receiver.accepted if d.path == "/ops"]
    assert ops["summary"].endswith(
        f"It was {ahead}: excluded from the SLA of 1 contract; normal time for 2 contracts."
    )
    assert ops["facts"]["Excluded from the SLA of"] == "acme-lab"
    assert ops["facts"]["Normal time for"] == "acme-fibre, acme-pair"
    assert [d.path for d in receiver.accepted if d.path == "/zeta"] == []


async def test_links_the_monitor_cannot_measure_are_told_to_operations_once(
    database: Database,
) -> None:
    async with webhook_receiver() as receiver:
        cfg = config(receiver.url)
        quiet = NOW - timedelta(minutes=30)  # the last sample: stale 90 s later
        await load(
            database,
            cfg,
            [
                Sample("zeta-dc", "ping", quiet - timedelta(seconds=30 * i), Outcome.UP)
                for i in range(5)
            ],
        )
        clock = [NOW]
        evaluator = Evaluator(database, cfg, clock=lambda: clock[0])
        # Just started: every link looks unmeasured since the last run; say nothing yet.
        assert await evaluator.evaluate_once() == 0
        clock[0] = NOW + timedelta(minutes=10)
        assert await evaluator.evaluate_once() == 1
        clock[0] = NOW + timedelta(minutes=15)
        assert await evaluator.evaluate_once() == 0  # still the same blind spot
        await drain(Dispatcher(database, cfg, clock=lambda: NOW))

    assert receiver.unique("/zeta") == set()  # about the monitor: for operations only
    (blind,) = [d.body for d in receiver.accepted if d.path == "/ops"]
    assert blind["subject"] == "[Linkwatch] Monitor cannot measure 1 link"
    assert blind["data"]["links"] == [
        {"link_id": "zeta-dc", "since": (quiet + timedelta(seconds=90)).isoformat()}
    ]


async def test_a_blind_site_is_told_to_operations_when_it_goes_blind_and_sees_again(
    database: Database,
) -> None:
    site = SiteConfig(id="fra", name="Frankfurt PoP")
    record = SiteRecord(database)
    blind = NOW - timedelta(minutes=20)
    failing = CanaryResult("gateway", blind, True, "no reply (1/1 lost)")
    stop = asyncio.Event()
    stop.set()
    await record.note(SiteStatus("fra", True, blind, (failing,), 1, 1))
    await record.run(stop)  # writes what was noted, once
    async with webhook_receiver() as receiver:
        cfg = config(receiver.url).model_copy(update={"site": site})
        evaluator = Evaluator(database, cfg, clock=lambda: NOW)
        assert await evaluator.evaluate_once() == 1  # blind now
        assert await evaluator.evaluate_once() == 0  # the same span: nothing new
        await drain(Dispatcher(database, cfg, clock=lambda: NOW))
        await record.note(SiteStatus("fra", False, NOW - timedelta(minutes=5), (), 0, 1))
        await record.run(stop)
        assert await evaluator.evaluate_once() == 1  # it sees again
        # A span already over when first seen is told once, by its end.
        await record.note(SiteStatus("fra", True, NOW - timedelta(minutes=4), (failing,), 1, 1))
        await record.note(SiteStatus("fra", False, NOW - timedelta(minutes=2), (), 0, 1))
        await record.run(stop)
        assert await evaluator.evaluate_once() == 1
        await drain(Dispatcher(database, cfg, clock=lambda: NOW))

    assert receiver.unique("/acme") == set()  # about the monitor: for operations only
    assert receiver.unique("/zeta") == set()
    sent = [d.body for d in receiver.accepted if d.path == "/ops"]
    assert sorted(b["subject"] for b in sent) == [
        "[Linkwatch] MONITOR BLIND: site Frankfurt PoP (fra)",
        "[Linkwatch] MONITOR SEES AGAIN: site Frankfurt PoP (fra) after 15\u00a0min",
        "[Linkwatch] MONITOR SEES AGAIN: site Frankfurt PoP (fra) after 2\u00a0min",
    ]
    assert sent[0]["subject"].startswith("[Linkwatch] MONITOR BLIND")  # sent before the end
    assert sent[0]["data"]["reason"] == "1 of 1 canaries failing (gateway: no reply (1/1 lost))"


# --- the command line -----------------------------------------------------------------


async def test_notify_test_sends_a_signed_message_and_names_a_missing_channel(
    tmp_path: object,
) -> None:
    import asyncio
    from pathlib import Path

    directory = Path(str(tmp_path))
    async with webhook_receiver() as receiver:
        path = directory / "linkwatch.yaml"
        path.write_text(BASE + notifications_yaml(receiver.url))

        async def run(*args: str) -> tuple[int, str, str]:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "linkwatch",
                "notify",
                "test",
                "--config",
                str(path),
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=REPO,
            )
            out, err = await child.communicate()
            assert child.returncode is not None
            return child.returncode, out.decode(), err.decode()

        code, out, _ = await run("--channel", "acme")
        assert (code, out) == (0, f"test message delivered: webhook {receiver.url}/acme\n")
        code, _, err = await run("--channel", "pager")
        assert code == 1
        assert err == "linkwatch: no channel 'pager'; defined channels: acme, ops, zeta\n"
        receiver.fail_next = 1
        code, _, err = await run("--channel", "ops")
        assert code == 1
        assert "not delivered: HTTP 503: receiver unavailable" in err

    (message,) = receiver.accepted
    assert message.signed
    assert message.body["kind"] == "test"
    assert message.body["subject"] == "[Linkwatch] Test message for channel acme"
    assert SECRET not in str(message.body)


def test_the_default_breach_notice_says_what_happened_and_when_the_credit_comes() -> None:
    cfg = parse_config(BASE + notifications_yaml("http://127.0.0.1:9"))
    event = Event(
        "sla-breached:c:acme-hq:2026-W46",
        EventKind.SLA_BREACHED,
        NOW,
        "acme",
        "acme-hq",
        {
            "contract_id": "c",
            "subject_id": "acme-hq",
            "window": "2026-W46",
            "window_start": W46.isoformat(),
            "availability_pct": "98.80952380",
            "target_pct": "99.5",
            "down_s": "7200",
            "incidents": 1,
            "credit_amount": "100.00",
            "credit_pct": "10",
            "currency": "EUR",
            "credit_status": "applied",
            "invoice_ref": "INV-2026-1142",
            "closes_at": (W47 + timedelta(days=2)).isoformat(),
        },
    )
    message = render(event, cfg)
    assert message.summary == (
        "Acme HQ fibre (acme-hq) did not meet its availability target in 2026-W46: we "
        "measured 98.809\u00a0% against the 99.5\u00a0% your contract promises (2\u00a0h of "
        "downtime counted, 1 outage). Your contract entitles you to a service credit of "
        "100.00\u00a0EUR (10\u00a0% of the window's fee): credited on invoice INV-2026-1142. "
        "We apologise for the disruption."
    )
    assert "credited on invoice INV-2026-1142" in message.text
