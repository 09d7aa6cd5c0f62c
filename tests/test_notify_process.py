"""Notifications from a real `linkwatch run`: a namespace host's link taken down and up
gives exactly one down and one recovery message; a process killed while it delivers
loses nothing once it is started again."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.database import Database
from collector.embedded import EmbeddedPostgres
from tests.helpers import free_port, start_linkwatch, stopped_after, until
from tests.netns import NamespaceHost
from tests.notify_kit import SECRET, WebhookReceiver, webhook_receiver
from tests.snmpd_kit import PORT, snmpd_in


def write_config(
    directory: Path,
    url: str,
    receiver: str,
    host: str,
    extra: str = "",
    *,
    hold_down: str = "0s",
    acme_probes: str = "",
) -> Path:
    path = directory / "linkwatch.yaml"
    path.write_text(
        f"""
database: {{url: "{url}"}}
data_dir: {directory / "data"}
portal: {{listen: "127.0.0.1:{free_port()}"}}
customers:
  - {{id: acme, name: Acme Corp}}
  - {{id: zeta, name: Zeta GmbH}}
links:
  - id: acme-hq
    customer: acme
    probes:
      - {{id: ping, kind: icmp, host: "{host}", interval: 1s, timeout: 300ms, count: 2,
         spacing: 50ms, confirm: 2}}
{acme_probes}
  - id: zeta-dc
    customer: zeta
    probes: [{{id: ping, kind: icmp, host: 127.0.0.1, interval: 1s, timeout: 300ms, count: 2,
              spacing: 50ms}}]
notifications:
  hold_down: {hold_down}
  retry_backoff: 200ms
  evaluate_every: 1s
  channels:
    - {{id: ops, kind: webhook, url: "{receiver}/ops", secret: {SECRET}, timeout: 2s}}
    - {{id: acme, kind: webhook, url: "{receiver}/acme", secret: {SECRET}, timeout: 2s}}
    - {{id: zeta, kind: webhook, url: "{receiver}/zeta", secret: {SECRET}, timeout: 2s}}
  routes:
    - {{id: ops, channel: ops}}
    - {{id: acme, channel: acme, customer: acme}}
    - {{id: zeta, channel: zeta, customer: zeta}}
{extra}"""
    )
    return path


def kinds(receiver: WebhookReceiver, path: str) -> list[str]:
    return [d.body["kind"] for d in receiver.accepted if d.path == path]


async def test_a_link_taken_down_and_up_gives_one_down_and_one_recovery_message(
    database: Database,
    embedded_postgres: EmbeddedPostgres,
    netns_host: NamespaceHost,
    tmp_path: Path,
) -> None:
    log = tmp_path / "linkwatch.log"
    async with webhook_receiver() as receiver:
        config = write_config(tmp_path, embedded_postgres.url, receiver.url, netns_host.host)
        proc = start_linkwatch("run", "--config", str(config), log=log)
        with stopped_after(proc, log):
            await asyncio.sleep(6)  # up and probing: nothing to say yet
            assert receiver.accepted == []
            netns_host.exec("ip", "link", "set", netns_host.veth_inside, "down")
            await until(
                "the down message", lambda: "link-down" in kinds(receiver, "/acme"), proc, log, 30
            )
            await asyncio.sleep(4)  # still down: no second message
            netns_host.exec("ip", "link", "set", netns_host.veth_inside, "up")
            await until(
                "the recovery message",
                lambda: "link-recovered" in kinds(receiver, "/acme"),
                proc,
                log,
                30,
            )
            await asyncio.sleep(4)

    assert kinds(receiver, "/acme") == ["link-down", "link-recovered"]
    assert kinds(receiver, "/ops") == ["link-down", "link-recovered"]
    assert kinds(receiver, "/zeta") == []  # another customer's outage
    down, back = (d.body for d in receiver.accepted if d.path == "/acme")
    assert back["data"]["down_since"] == down["data"]["down_since"]
    assert back["data"]["down_s"] >= 3
    assert all(d.signed for d in receiver.accepted)


async def test_a_port_down_under_a_link_that_still_pings_is_one_outage_with_one_recovery(
    database: Database,
    embedded_postgres: EmbeddedPostgres,
    netns_host: NamespaceHost,
    tmp_path: Path,
) -> None:
    """The customer's port goes down while the access router itself still answers pings:
    the link is down by its SNMP probe, whichever probe's samples land first in each
    round, until the port comes back; the down message waits out its hold-down."""
    log = tmp_path / "linkwatch.log"
    with snmpd_in(netns_host, tmp_path / "snmpd") as agent:
        port_probe = (
            f'      - {{id: port, kind: snmp, host: "{agent}", community: public,'
            f" interval: 1s, timeout: 400ms, confirm: 2, interface: {{name: {PORT}}}}}"
        )
        async with webhook_receiver() as receiver:
            config = write_config(
                tmp_path,
                embedded_postgres.url,
                receiver.url,
                netns_host.host,
                hold_down="5s",
                acme_probes=port_probe,
            )
            proc = start_linkwatch("run", "--config", str(config), log=log)
            with stopped_after(proc, log):
                await asyncio.sleep(6)
                netns_host.exec("ip", "link", "set", PORT, "down")
                went_down = datetime.now(UTC)
                await until(
                    "the down message", lambda: "link-down" in kinds(receiver, "/acme"),
                    proc, log, 40,
                )  # fmt: skip
                await asyncio.sleep(10)  # the port is still down, the router still pings
                assert kinds(receiver, "/acme") == ["link-down"]
                netns_host.exec("ip", "link", "set", PORT, "up")
                came_up = datetime.now(UTC)
                await until(
                    "the recovery message",
                    lambda: "link-recovered" in kinds(receiver, "/acme"),
                    proc, log, 40,
                )  # fmt: skip
                await asyncio.sleep(3)

    assert kinds(receiver, "/acme") == ["link-down", "link-recovered"]
    down, back = (d.body for d in receiver.accepted if d.path == "/acme")
    assert back["data"]["down_since"] == down["data"]["down_since"]
    outage = came_up - went_down
    # The agent notices a port change within its interface cache period (a few seconds).
    assert outage.total_seconds() - 8 <= back["data"]["down_s"] <= outage.total_seconds() + 8
    # No status change is ever logged as beginning later than the moment it was logged.
    for line in log.read_text().splitlines():
        if "link state changed" in line:
            logged_at = datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
            since = datetime.fromisoformat(line.rsplit("since=", 1)[1])
            assert since <= logged_at, line


async def test_a_process_killed_while_delivering_delivers_everything_after_a_restart(
    database: Database, embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    running = f"""
maintenance:
  - id: core-upgrade
    description: Core router upgrade
    start: {(now - timedelta(hours=1)).isoformat()}
    end: {(now + timedelta(hours=1)).isoformat()}
    announced_at: {(now - timedelta(days=4)).isoformat()}
"""
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    async with webhook_receiver() as receiver:
        receiver.hang_next = 3  # every first request: taken, never answered
        config = write_config(tmp_path, embedded_postgres.url, receiver.url, "127.0.0.1", running)
        first = start_linkwatch("run", "--config", str(config), log=first_log)
        try:
            await until(
                "three deliveries in flight", lambda: receiver.hung == 3, first, first_log, 40
            )
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        assert receiver.accepted == []

        second = start_linkwatch("run", "--config", str(config), log=second_log)
        with stopped_after(second, second_log):
            await until(
                "every message delivered",
                lambda: all(kinds(receiver, p) for p in ("/ops", "/acme", "/zeta")),
                second,
                second_log,
                60,
            )
            await asyncio.sleep(3)

    for path in ("/ops", "/acme", "/zeta"):
        assert kinds(receiver, path) == ["maintenance-started"], path
    assert {d.body["customer_id"] for d in receiver.accepted} == {None, "acme", "zeta"}
    async with database.connection() as conn:
        cur = await conn.execute("SELECT route_id, status, attempts FROM deliveries ORDER BY 1")
        assert await cur.fetchall() == [
            ("acme", "sent", 2),
            ("ops", "sent", 2),
            ("zeta", "sent", 2),
        ]
