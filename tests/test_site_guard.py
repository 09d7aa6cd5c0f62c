"""A monitor that cannot see (its canaries fail) records its probes' failures as unknown.

The guard's rules with a fake clock; then `linkwatch run` in front of a test host whose
namespace stops answering everyone (the monitor is cut off: its canary and its
customer's link fail together, and no outage is recorded) and then only the customer's
address (the link is down, as before).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from collector.embedded import EmbeddedPostgres
from collector.site_guard import SiteGuard, SiteStatus
from kernel.config import SiteConfig, parse_config
from kernel.domain import Outcome, Sample
from tests.helpers import (
    FAST_HASHER,
    browser,
    free_port,
    linkwatch,
    login,
    start_linkwatch,
    stopped_after,
    wait_for,
)
from tests.netns import NamespaceHost

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
PASSWORD = "site-guard-password"


def _site(canaries: int = 2, blind_when: int | str = "all") -> SiteConfig:
    probes = ", ".join(
        f"{{id: gw{i}, kind: icmp, host: 127.0.0.{i + 1}, interval: 5s, timeout: 1s, count: 1}}"
        for i in range(canaries)
    )
    config = parse_config(
        f"site: {{id: fra, canaries: [{probes}], blind_when: {blind_when}}}\n"
        "customers: [{id: acme, name: Acme}]\n"
        "links: [{id: hq, customer: acme, probes: [{id: ping, kind: icmp, host: 127.0.0.1}]}]\n"
    )
    return config.site


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _sample(probe: str, seconds: float, outcome: Outcome, error: str | None = None) -> Sample:
    link = "site:fra" if probe.startswith("gw") else "hq"
    return Sample(link, probe, T0 + timedelta(seconds=seconds), outcome, error=error)


async def _guarded(site: SiteConfig) -> tuple[SiteGuard, list[Sample], list[SiteStatus], _Clock]:
    stored: list[Sample] = []
    changes: list[SiteStatus] = []

    async def sink(sample: Sample) -> None:
        stored.append(sample)

    async def changed(status: SiteStatus) -> None:
        changes.append(status)

    clock = _Clock()
    return SiteGuard(site, sink, clock=clock, on_change=changed), stored, changes, clock


async def test_a_down_sample_waits_for_the_canaries_and_is_unknown_while_they_fail() -> None:
    guard, stored, changes, clock = await _guarded(_site())
    stop = asyncio.Event()
    running = asyncio.create_task(guard.run(stop))
    await guard.canary(_sample("gw0", 0, Outcome.UP))
    await guard.canary(_sample("gw1", 0.5, Outcome.UP))
    await guard.submit(_sample("ping", 1, Outcome.UP))
    await guard.submit(_sample("ping", 2, Outcome.DOWN, "no reply (1/1 lost)"))
    await asyncio.sleep(0)
    assert [s.outcome for s in stored] == [Outcome.UP]  # the down one waits for the canaries
    await guard.canary(_sample("gw0", 5, Outcome.DOWN, "no reply (1/1 lost)"))
    await asyncio.sleep(0)
    assert len(stored) == 1  # one canary has spoken; the other has not run since
    await guard.canary(_sample("gw1", 5.5, Outcome.DOWN, "no reply (1/1 lost)"))
    await asyncio.sleep(0.01)
    judged = stored[1]
    assert judged.outcome is Outcome.UNKNOWN
    assert judged.loss_pct is None
    assert judged.error == (
        "monitor blind: 2 of 2 canaries failing (gw0: no reply (1/1 lost); "
        "gw1: no reply (1/1 lost)); the probe saw: no reply (1/1 lost)"
    )
    # The site turned blind when the second canary failed, once.
    assert [(c.blind, c.since) for c in changes] == [
        (False, T0),
        (True, T0 + timedelta(seconds=5.5)),
    ]
    # The canaries answer again: the next down sample is the link's, down as it was.
    await guard.canary(_sample("gw0", 10, Outcome.UP))
    await guard.canary(_sample("gw1", 10.5, Outcome.UP))
    await guard.submit(_sample("ping", 11, Outcome.DOWN, "no reply (1/1 lost)"))
    await guard.canary(_sample("gw0", 15, Outcome.UP))
    await guard.canary(_sample("gw1", 15.5, Outcome.UP))
    await asyncio.sleep(0.01)
    assert stored[-1].outcome is Outcome.DOWN
    assert stored[-1].error == "no reply (1/1 lost)"
    assert changes[-1].blind is False
    assert guard.judged_blind == 1
    stop.set()
    await running
    clock.now = T0  # nothing read the clock to judge: every sample had its canaries


async def test_a_probes_samples_reach_the_pipeline_in_the_order_taken() -> None:
    guard, stored, _, _ = await _guarded(_site(canaries=1))
    stop = asyncio.Event()
    running = asyncio.create_task(guard.run(stop))
    await guard.canary(_sample("gw0", 0, Outcome.UP))
    await guard.submit(_sample("ping", 1, Outcome.DOWN))
    await guard.submit(_sample("ping", 2, Outcome.UP))  # waits behind the down one
    await asyncio.sleep(0.01)
    assert stored == []
    await guard.canary(_sample("gw0", 5, Outcome.UP))
    await asyncio.sleep(0.01)
    assert [(s.observed_at, s.outcome) for s in stored] == [
        (T0 + timedelta(seconds=1), Outcome.DOWN),
        (T0 + timedelta(seconds=2), Outcome.UP),
    ]
    stop.set()
    await running


async def test_a_failure_right_after_the_canaries_failed_is_the_monitors_too() -> None:
    # Blind before the sample and seeing again after it: the sample is not the link's.
    guard, stored, _, _ = await _guarded(_site(canaries=1))
    stop = asyncio.Event()
    running = asyncio.create_task(guard.run(stop))
    await guard.canary(_sample("gw0", 0, Outcome.UNKNOWN, "monitor: no route to 127.0.0.1"))
    await guard.submit(_sample("ping", 1, Outcome.DOWN, "no reply (1/1 lost)"))
    await guard.canary(_sample("gw0", 5, Outcome.UP))
    await asyncio.sleep(0.01)
    assert stored[0].outcome is Outcome.UNKNOWN
    stop.set()
    await running


async def test_one_failing_canary_of_two_is_not_blindness_unless_configured() -> None:
    for blind_when, expected in ((2, Outcome.DOWN), (1, Outcome.UNKNOWN)):
        guard, stored, _, _ = await _guarded(_site(blind_when=blind_when))
        stop = asyncio.Event()
        running = asyncio.create_task(guard.run(stop))
        await guard.canary(_sample("gw0", 0, Outcome.UP))
        await guard.canary(_sample("gw1", 0, Outcome.UP))
        await guard.submit(_sample("ping", 1, Outcome.DOWN))
        await guard.canary(_sample("gw0", 5, Outcome.DOWN))
        await guard.canary(_sample("gw1", 5, Outcome.UP))
        await asyncio.sleep(0.01)
        assert stored[0].outcome is expected, blind_when
        stop.set()
        await running


async def test_silent_canaries_cannot_vouch_and_no_canaries_judge_nothing() -> None:
    guard, stored, _, clock = await _guarded(_site(canaries=1))
    stop = asyncio.Event()
    running = asyncio.create_task(guard.run(stop))
    await guard.canary(_sample("gw0", 0, Outcome.UP))
    await guard.submit(_sample("ping", 1, Outcome.DOWN))
    # The canary does not run again; past its interval, run time and a second the
    # sample is judged with what is known: no run since counts as failing.
    clock.now = T0 + timedelta(seconds=1 + 5 + 1 + 1.01)
    guard.update(guard._site)  # wakes the guard, as any new input would
    await asyncio.sleep(0.05)
    assert stored[0].outcome is Outcome.UNKNOWN
    assert "gw0: no run since" in (stored[0].error or "")
    stop.set()
    await running

    plain = parse_config(
        "customers: [{id: acme, name: Acme}]\n"
        "links: [{id: hq, customer: acme, probes: [{id: ping, kind: icmp, host: 127.0.0.1}]}]\n"
    ).site
    guard, stored, _, _ = await _guarded(plain)
    await guard.submit(_sample("ping", 1, Outcome.DOWN))  # no canaries: nothing waits
    assert stored[0].outcome is Outcome.DOWN


def test_bad_site_settings_are_named(tmp_path: Path) -> None:
    config = tmp_path / "linkwatch.yaml"
    config.write_text(
        "site:\n"
        "  id: fra\n"
        "  blind_when: 3\n"
        "  canaries:\n"
        "    - {id: gw, kind: icmp, host: 127.0.0.1}\n"
        "    - {id: gw, kind: tcp, host: 127.0.0.1, port: 22}\n"
        "customers: [{id: acme, name: Acme}]\n"
        "links: [{id: hq, customer: acme, probes: [{id: ping, kind: icmp, host: 127.0.0.1}]}]\n"
    )
    result = linkwatch("check-config", str(config))
    assert result.returncode == 2
    assert "site: canary ids must be unique; repeated: gw" in result.stderr, result.stderr


# --- the monitor cut off, as a whole -----------------------------------------------------


def _echo_ignored(host: NamespaceHost, v4: bool, v6: bool) -> None:
    """Whether the test host's namespace answers pings, per address family."""
    host.exec("sysctl", "-q", f"net.ipv4.icmp_echo_ignore_all={int(v4)}")
    host.exec("sysctl", "-q", f"net.ipv6.icmp.echo_ignore_all={int(v6)}")


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def test_a_cut_off_monitor_records_no_outage_and_a_cut_link_still_goes_down(
    netns_host: NamespaceHost, pg_data_dir: Path
) -> None:
    if subprocess.run(
        ["ip", "netns", "exec", netns_host.netns, "sysctl", "net.ipv6.icmp.echo_ignore_all"],
        capture_output=True,
        check=False,
    ).returncode:
        pytest.skip("this kernel cannot ignore ICMPv6 echoes per namespace")
    config = pg_data_dir / "linkwatch.yaml"
    ping = "interval: 1s, timeout: 400ms, count: 1"
    port = free_port()
    config.write_text(
        f"data_dir: {pg_data_dir}\n"
        f"portal: {{listen: '127.0.0.1:{port}'}}\n"
        f"users: [{{name: noc, role: ops, password_hash: '{FAST_HASHER.hash(PASSWORD)}'}}]\n"
        "site:\n"
        "  id: fra\n"
        f"  canaries: [{{id: gateway, kind: icmp, host: '{netns_host.host_v6}', {ping}}}]\n"
        "customers: [{id: acme, name: Acme}]\n"
        "links:\n"
        "  - id: hq\n"
        "    customer: acme\n"
        f"    probes: [{{id: ping, kind: icmp, host: '{netns_host.host}', {ping}, confirm: 2}}]\n"
    )
    log = pg_data_dir / "linkwatch.log"
    proc = start_linkwatch("run", "--config", str(config), log=log)
    with stopped_after(proc, log):
        wait_for("the database", (pg_data_dir / "postgres" / "run").exists, 60, proc, log)
        url = EmbeddedPostgres(pg_data_dir).start()  # shares the daemon's server

        def count(sql: str) -> int:
            try:
                return int(_rows(url, sql)[0][0])  # type: ignore[call-overload]
            except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
                return 0  # the daemon is still starting its server, or migrating

        up = "SELECT count(*) FROM samples WHERE link_id = 'hq' AND outcome = 'up'"
        wait_for("the link measured up", lambda: count(up) >= 3, 60, proc, log)
        # Everything beyond the monitor stops answering: its canary and the customer.
        _echo_ignored(netns_host, v4=True, v6=True)
        blind = (
            "SELECT count(*) FROM samples WHERE link_id = 'hq' AND outcome = 'unknown'"
            " AND error LIKE 'monitor blind: 1 of 1 canaries failing (gateway: %'"
        )
        wait_for("failures judged blind", lambda: count(blind) >= 5, 60, proc, log)
        # Operations see it: on the NOC, and in `db stats`.
        noc = asyncio.run(_noc(f"http://127.0.0.1:{port}"))
        notices = re.findall(r'<p class="notice" role="alert">([^<]*)</p>', noc)
        assert any(
            n.startswith("This monitor&#39;s site fra is blind since ")
            and "1 of 1 canaries failing (gateway: no reply (1/1 lost))" in n
            for n in notices
        ), notices
        stats = linkwatch("db", "stats", "--config", str(config))
        site = next(line for line in stats.stdout.splitlines() if line.startswith("Site"))
        assert "fra BLIND since " in site, stats.stdout
        _echo_ignored(netns_host, v4=False, v6=False)
        spans = "SELECT count(*) FROM site_blind WHERE site_id = 'fra' AND ends_at IS NOT NULL"
        wait_for("the blind span closed", lambda: count(spans) == 1, 30, proc, log)
        assert count("SELECT count(*) FROM link_states WHERE status = 'down'") == 0
        assert count("SELECT count(*) FROM samples WHERE outcome = 'down'") == 0, _rows(
            url, "SELECT observed_at, outcome, error FROM samples ORDER BY observed_at"
        )

        # Only the customer's address stops answering; the canary still does.
        _echo_ignored(netns_host, v4=True, v6=False)
        down = "SELECT count(*) FROM link_states WHERE link_id = 'hq' AND status = 'down'"
        wait_for("the link down", lambda: count(down) == 1, 60, proc, log)
        _echo_ignored(netns_host, v4=False, v6=False)
        reason = _rows(url, "SELECT reason FROM site_blind WHERE site_id = 'fra'")
        assert reason == [("1 of 1 canaries failing (gateway: no reply (1/1 lost))",)]
        stats = linkwatch("db", "stats", "--config", str(config))
        site = next(line for line in stats.stdout.splitlines() if line.startswith("Site"))
        assert re.search(r"1 blind span in 7 days; the last .* for \d+ s", site), site


async def _noc(base: str) -> str:
    async with browser() as session:
        await login(session, base, "noc", PASSWORD)
        async with session.get(f"{base}/noc") as response:
            assert response.status == 200
            return await response.text()
