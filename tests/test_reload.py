"""SIGHUP as an operator uses it on a running `linkwatch run`: every kind of change in the
file (links, probes, contracts, maintenance, routes) takes effect in every part of the
daemon (probing, link states, outage messages, the portal, the budgets) without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from psycopg.rows import tuple_row

from collector import sync_maintenance
from collector.database import Database
from collector.embedded import EmbeddedPostgres
from kernel.config import Config, parse_config
from kernel.domain import MaintenanceWindow
from linkwatch.daemon import _reloader, _Running
from tests.helpers import (
    FAST_HASHER,
    browser,
    free_port,
    linkwatch,
    login,
    start_linkwatch,
    stopped_after,
    until,
)
from tests.netns import NamespaceHost
from tests.notify_kit import SECRET, WebhookReceiver, webhook_receiver
from tests.test_notify_process import kinds

PASSWORD = "reload-password"


def config_text(
    *, url: str, data_dir: Path, port: int, receiver: str, unreachable: str, after: bool
) -> str:
    """The file before the reload, or after it (`after`): acme's backup probe (it fails)
    no longer counts toward availability, a link and its contract are added, zeta's link
    and its contract are removed, and acme gets a route of its own."""
    hashed = FAST_HASHER.hash(PASSWORD)
    backup_counts = "false" if after else "true"
    added = f"""
  - id: acme-branch
    customer: acme
    description: Acme branch office
    probes: [{{id: ping, kind: icmp, host: "{unreachable}", interval: 1s, timeout: 300ms,
              count: 1, confirm: 2}}]
"""
    removed = """
  - id: zeta-dc
    customer: zeta
    probes: [{id: ping, kind: icmp, host: 127.0.0.1, interval: 1s, timeout: 300ms, count: 1}]
"""
    added_contract = """
  - {id: acme-branch-sla, customer: acme, plan: tight, links: [acme-branch], fee: "100.00"}
"""
    removed_contract = """
  - {id: zeta-sla, customer: zeta, plan: gold, links: [zeta-dc], fee: "100.00"}
"""
    acme_route = """
    - {id: acme, channel: acme, customer: acme}
"""
    return f"""
database: {{url: "{url}"}}
data_dir: {data_dir}
portal: {{listen: "127.0.0.1:{port}", refresh: 5s}}
customers:
  - {{id: acme, name: Acme Corp}}
  - {{id: zeta, name: Zeta GmbH}}
links:
  - id: acme-hq
    customer: acme
    description: Acme HQ fibre
    probes:
      - {{id: ping, kind: icmp, host: 127.0.0.1, interval: 1s, timeout: 300ms, count: 1}}
      - {{id: backup, kind: icmp, host: "{unreachable}", interval: 1s, timeout: 300ms,
          count: 1, confirm: 2, availability: {backup_counts}}}
{added if after else removed}
plans:
  - {{id: gold, target: 99.9, window: week, currency: EUR, credit: {{per_step: 5}}}}
  # A budget of about half a second a week: a few seconds down use it up at any time of
  # the week (gold's 10 minutes would only be used up in a week's last minutes).
  - {{id: tight, target: 99.9999, window: week, currency: EUR, credit: {{per_step: 5}}}}
contracts:
  - {{id: acme-hq-sla, customer: acme, plan: gold, links: [acme-hq], fee: "100.00"}}
{added_contract if after else removed_contract}
users:
  - {{name: noc, role: ops, password_hash: "{hashed}"}}
  - {{name: acme, role: customer, customer: acme, password_hash: "{hashed}"}}
notifications:
  hold_down: 0s
  retry_backoff: 200ms
  evaluate_every: 1s
  channels:
    - {{id: ops, kind: webhook, url: "{receiver}/ops", secret: {SECRET}, timeout: 2s}}
    - {{id: acme, kind: webhook, url: "{receiver}/acme", secret: {SECRET}, timeout: 2s}}
  routes:
    - {{id: ops, channel: ops}}
{acme_route if after else ""}
"""


async def rows(db: Database, sql: str) -> list[tuple[object, ...]]:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(sql)
        return list(await cur.fetchall())


def events_of(receiver: WebhookReceiver, path: str) -> list[tuple[str, str | None]]:
    return [(d.body["kind"], d.body.get("link_id")) for d in receiver.accepted if d.path == path]


async def test_sighup_applies_links_probes_contracts_and_routes_everywhere(
    database: Database,
    embedded_postgres: EmbeddedPostgres,
    netns_host: NamespaceHost,
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "linkwatch.log"
    path = tmp_path / "linkwatch.yaml"
    async with webhook_receiver() as receiver:

        def write(after: bool) -> None:
            path.write_text(
                config_text(
                    url=embedded_postgres.url,
                    data_dir=tmp_path / "data",
                    port=port,
                    receiver=receiver.url,
                    unreachable=netns_host.empty,
                    after=after,
                )
            )

        write(after=False)
        proc = start_linkwatch("run", "--config", str(path), log=log)

        async def wait(what: str, check: Callable[[], bool], within_s: float = 30) -> None:
            await until(what, check, proc, log, within_s)

        with stopped_after(proc, log):
            # Before: acme-hq is down by its backup probe, and operations are told.
            await wait("acme-hq's outage", lambda: ("link-down", "acme-hq") in events_of(
                receiver, "/ops"))  # fmt: skip
            write(after=True)
            proc.send_signal(signal.SIGHUP)
            await wait("the reload", lambda: "config reloaded" in log.read_text())
            reloaded = len(await rows(database, "SELECT 1 FROM samples"))

            # A probe that no longer counts: the link recovers, from its states on.
            await wait("acme-hq's recovery", lambda: ("link-recovered", "acme-hq") in events_of(
                receiver, "/ops"))  # fmt: skip
            # An added link gets states and outages, and an added route its messages.
            await wait("acme-branch's outage", lambda: ("link-down", "acme-branch") in events_of(
                receiver, "/acme"))  # fmt: skip
            states = await rows(
                database, "SELECT DISTINCT status FROM link_states WHERE link_id = 'acme-branch'"
            )
            assert ("down",) in states

            async with browser() as session:
                board = await login(session, base, "noc", PASSWORD)
                assert "acme-branch" in board
                assert "zeta-dc" not in board  # a removed link leaves the board
                async with session.get(f"{base}/links/zeta-dc") as response:
                    assert response.status == 404
            async with browser() as session:
                board = await login(session, base, "acme", PASSWORD)
                assert "acme-branch" in board  # the customer sees the added link...
                async with session.get(f"{base}/links/acme-branch") as response:
                    page = await response.text()
                    assert response.status == 200
                    assert "acme-branch-sla" in page  # ...under its added contract

            # The added contract's budget is watched: its outage uses it up and says so.
            await wait(
                "the added contract's budget warning",
                lambda: any(
                    d.body["kind"] == "budget"
                    and d.body["data"].get("contract_id") == "acme-branch-sla"
                    for d in receiver.accepted
                ),
            )
            # A removed link is no longer probed.
            zeta_before = await rows(
                database, "SELECT count(*) FROM samples WHERE link_id = 'zeta-dc'"
            )
            await asyncio.sleep(3)
            zeta_after = await rows(
                database, "SELECT count(*) FROM samples WHERE link_id = 'zeta-dc'"
            )
            assert zeta_after == zeta_before
            assert len(await rows(database, "SELECT 1 FROM samples")) > reloaded
    assert "Traceback" not in log.read_text()


def maintenance_config(*, url: str, data_dir: Path, port: int, receiver: str, windows: str) -> str:
    hashed = FAST_HASHER.hash(PASSWORD)
    return f"""
database: {{url: "{url}"}}
data_dir: {data_dir}
portal: {{listen: "127.0.0.1:{port}", refresh: 5s}}
customers:
  - {{id: acme, name: Acme Corp}}
  - {{id: zeta, name: Zeta GmbH}}
links:
  - id: acme-hq
    customer: acme
    probes: [{{id: ping, kind: icmp, host: 127.0.0.1, interval: 1s, timeout: 300ms, count: 1}}]
  - id: zeta-dc
    customer: zeta
    probes: [{{id: ping, kind: icmp, host: 127.0.0.1, interval: 1s, timeout: 300ms, count: 1}}]
plans:
  - {{id: gold, target: 99.9, window: week, currency: EUR, credit: {{per_step: 5}}}}
  # A budget of about half a second a week: a few seconds down use it up at any time of
  # the week (gold's 10 minutes would only be used up in a week's last minutes).
  - {{id: tight, target: 99.9999, window: week, currency: EUR, credit: {{per_step: 5}}}}
contracts:
  - {{id: acme-hq-sla, customer: acme, plan: gold, links: [acme-hq], fee: "100.00"}}
users:
  - {{name: acme, role: customer, customer: acme, password_hash: "{hashed}"}}
  - {{name: noc, role: ops, password_hash: "{hashed}"}}
notifications:
  retry_backoff: 200ms
  evaluate_every: 1s
  channels:
    - {{id: ops, kind: webhook, url: "{receiver}/ops", secret: {SECRET}, timeout: 2s}}
    - {{id: acme, kind: webhook, url: "{receiver}/acme", secret: {SECRET}, timeout: 2s}}
    - {{id: zeta, kind: webhook, url: "{receiver}/zeta", secret: {SECRET}, timeout: 2s}}
  routes:
    - {{id: ops, channel: ops}}
    - {{id: acme, channel: acme, customer: acme, events: [maintenance-announced]}}
    - {{id: zeta, channel: zeta, customer: zeta}}
maintenance:
{windows}
"""


async def test_maintenance_taken_out_of_the_file_is_cancelled_and_the_cancellation_told(
    database: Database, embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    """Planned work is withdrawn by taking it out of the file: it stops counting as
    maintenance, staff and the customer see it as cancelled (and when), and whoever was
    told of it is told it is off; nobody else hears of it."""
    now = datetime.now(UTC)
    planned = (
        f"  - {{id: swap, description: Router swap, links: [acme-hq],"
        f" start: {(now + timedelta(hours=3)).isoformat()},"
        f" end: {(now + timedelta(hours=5)).isoformat()},"
        f" announced_at: {(now - timedelta(days=4)).isoformat()}}}\n"
    )
    running = (
        f"  - {{id: fibre, description: Fibre splice, links: [acme-hq],"
        f" start: {(now - timedelta(minutes=30)).isoformat()},"
        f" end: {(now + timedelta(hours=1)).isoformat()},"
        f" announced_at: {(now - timedelta(days=5)).isoformat()}}}\n"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "linkwatch.log"
    path = tmp_path / "linkwatch.yaml"
    async with webhook_receiver() as receiver:

        def write(windows: str) -> None:
            path.write_text(
                maintenance_config(
                    url=embedded_postgres.url,
                    data_dir=tmp_path / "data",
                    port=port,
                    receiver=receiver.url,
                    windows=windows,
                )
            )

        write(planned + running)
        proc = start_linkwatch("run", "--config", str(path), log=log)
        with stopped_after(proc, log):
            await until(
                "the announcements",
                lambda: {"maintenance-announced", "maintenance-started"}
                <= set(kinds(receiver, "/ops")),
                proc, log, 30,
            )  # fmt: skip
            assert kinds(receiver, "/acme") == ["maintenance-announced"]
            write("  []\n")
            proc.send_signal(signal.SIGHUP)
            await until(
                "the cancellations",
                lambda: kinds(receiver, "/ops").count("maintenance-cancelled") == 2
                and "maintenance-cancelled" in kinds(receiver, "/acme"),
                proc, log, 30,
            )  # fmt: skip
            async with browser() as session:
                await login(session, base, "acme", PASSWORD)
                async with session.get(f"{base}/maintenance") as response:
                    page = await response.text()
                async with session.get(f"{base}/links/acme-hq") as response:
                    link_page = await response.text()
            await asyncio.sleep(2)

    # The customer's route takes announcements only: it hears of the withdrawn one it was
    # told about, not of the work stopped early (announced to operations when it began).
    acme = [d.body for d in receiver.accepted if d.path == "/acme"]
    assert [b["kind"] for b in acme] == ["maintenance-announced", "maintenance-cancelled"]
    assert acme[1]["data"]["maintenance_id"] == "swap"
    assert "has been cancelled" in acme[1]["summary"]
    assert kinds(receiver, "/zeta") == []  # never concerned
    assert "Cancelled" in page
    assert "Stopped early" in page
    assert "Cancelled before it began: no work, and the time counts normally." in page
    assert "In maintenance" not in link_page  # the splice stopped: no longer covered
    windows = await rows(
        database, "SELECT id, cancelled_at IS NOT NULL FROM maintenance_windows ORDER BY id"
    )
    assert windows == [("fibre", True), ("swap", True)]


async def test_a_one_off_command_with_another_copy_of_the_file_withdraws_nothing(
    database: Database, embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    ahead = MaintenanceWindow(
        "swap", now + timedelta(days=1), now + timedelta(days=1, hours=2), now, "Router swap",
        link_ids=("acme-hq",),
    )  # fmt: skip
    await sync_maintenance(database, [ahead], source="config", now=now)
    path = tmp_path / "other.yaml"
    path.write_text(
        maintenance_config(
            url=embedded_postgres.url,
            data_dir=tmp_path / "data",
            port=free_port(),
            receiver="http://127.0.0.1:9",
            windows="  []\n",
        )
    )
    done = linkwatch("credits", "list", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert await rows(database, "SELECT id, cancelled_at FROM maintenance_windows") == [
        ("swap", None)
    ]


def probing_config(*, url: str, data_dir: Path, port: int, links: str) -> bytes:
    return f"""\
database: {{url: "{url}"}}
data_dir: {data_dir}
portal: {{listen: "127.0.0.1:{port}"}}
customers:
  - {{id: acme, name: ACME}}
links:
{links}
""".encode()


HQ = (
    "  - {id: acme-hq, customer: acme, probes: [{id: ping, kind: icmp, host: 127.0.0.1,"
    " interval: 1s, timeout: 300ms, count: 1}]}\n"
)
BRANCH = HQ.replace("acme-hq", "acme-branch").replace("127.0.0.1", "127.0.0.2")


async def test_a_reload_that_fails_keeps_the_running_config_and_the_daemon_probing(
    database: Database, embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    """A Latin-1 byte or an interval past any calendar in the file an operator reloads:
    the daemon says why in one line and keeps probing with what it runs; a good file
    afterwards is applied as usual."""
    log = tmp_path / "linkwatch.log"
    path = tmp_path / "linkwatch.yaml"

    def write(links: str, *, replace: tuple[bytes, bytes] = (b"", b"")) -> None:
        text = probing_config(
            url=embedded_postgres.url, data_dir=tmp_path / "data", port=free_port(), links=links
        )
        path.write_bytes(text.replace(*replace) if replace[0] else text)

    async def samples(link: str) -> int:
        async with database.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute("SELECT count(*) FROM samples WHERE link_id = %s", (link,))
            found = await cur.fetchone()
        assert found is not None
        return int(found[0])

    async def still_probing(proc: subprocess.Popen[bytes]) -> None:
        before = await samples("acme-hq")
        await asyncio.sleep(3)
        assert proc.poll() is None, log.read_text()
        assert await samples("acme-hq") >= before + 2

    write(HQ)
    proc = start_linkwatch("run", "--config", str(path), log=log)
    with stopped_after(proc, log):
        await until(
            "the first samples", lambda: "portal listening" in log.read_text(), proc, log, 60
        )
        await still_probing(proc)

        write(HQ, replace=(b"name: ACME", b"name: M\xfcller"))
        proc.send_signal(signal.SIGHUP)
        await until(
            "the rejection", lambda: log.read_text().count("reload rejected") == 1, proc, log, 30
        )
        await still_probing(proc)

        write(HQ.replace("interval: 1s", "interval: 99999999999999999999w"))
        proc.send_signal(signal.SIGHUP)
        await until(
            "the rejection", lambda: log.read_text().count("reload rejected") == 2, proc, log, 30
        )
        await still_probing(proc)

        write(HQ + BRANCH)
        proc.send_signal(signal.SIGHUP)
        await until("the reload", lambda: "config reloaded" in log.read_text(), proc, log, 30)
        await asyncio.sleep(3)
        assert await samples("acme-branch") > 0
    text = log.read_text()
    rejected = [line for line in text.splitlines() if "reload rejected" in line]
    assert len(rejected) == 2
    assert f"path={path} problems=1: {path}:5: (top level): byte 0xfc in column" in rejected[0]
    assert (
        f"{path}:7: links[0].probes[0].interval: '99999999999999999999w' is longer than 36500d"
        " (100 years); use a shorter duration"
    ) in rejected[1]
    assert all(line.split(" ")[1] == "ERROR" for line in rejected)
    assert "Traceback" not in text
    assert proc.returncode == 0, text


@dataclass
class _Parts(_Running):
    """The running parts, recording each configuration they are handed; handing them
    `refused` fails half way, as a part that cannot take a change would."""

    refused: Config | None = None
    handed: list[Config] = field(default_factory=list)

    async def reload(self, config: Config, db: Database) -> None:
        self.handed.append(config)
        self.config = config
        if config is self.refused:
            raise RuntimeError("the scheduler cannot take this change\n(second line)")


async def test_a_reload_that_fails_in_any_way_keeps_the_running_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not only a ConfigError: whatever fails while reading the file or applying it, the
    running configuration stays (handed back to any part that took the new one) and one
    line says why."""
    text = probing_config(url="postgresql://unused", data_dir=tmp_path, port=8080, links=HQ)
    running_config = parse_config(text.decode(), environ={})
    new = parse_config((text + BRANCH.encode()).decode(), environ={})
    parts = _Parts(running_config, refused=new)
    outcomes: list[Config | Exception] = [MemoryError("out of memory reading the file"), new]

    def load(path: Path) -> Config:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    reload, stop = asyncio.Event(), asyncio.Event()
    path = tmp_path / "linkwatch.yaml"
    caplog.set_level(logging.INFO, logger="linkwatch.daemon")
    reloading = asyncio.create_task(
        _reloader(path, cast(Database, None), parts, reload, stop, load=load)
    )
    for attempt in (1, 2):
        reload.set()
        for _ in range(100):
            if (
                sum("the running configuration stays" in r.message for r in caplog.records)
                == attempt
            ):
                break
            await asyncio.sleep(0.05)
    stop.set()
    await reloading
    assert parts.config is running_config
    assert parts.handed == [new, running_config]  # the new one, then the running one back
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        f"config reload failed, the running configuration stays path={path}"
        " cause=MemoryError: out of memory reading the file",
        f"config reload failed while applying it, the running configuration stays path={path}"
        " cause=RuntimeError: the scheduler cannot take this change (second line)",
    ]
    assert not any("config reloaded" in r.getMessage() for r in caplog.records)
