"""Two sites measure one customer's address through real namespaces: `linkwatch run` at
site fra, a `linkwatch agent` at site ams in a namespace of its own, quorum 2.

The customer's address lives in the test host's namespace, behind a veth pair to each
site; each site's canary is the test host's own end of that site's veth. Cutting ams off
(the test host drops every reply to it) blinds ams: no outage, the time is unknown.
Taking the customer's address away is seen by both: one outage, from when the second
site confirmed it.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from collector.embedded import EmbeddedPostgres
from tests.helpers import REPO, start_linkwatch, stopped_after, wait_for
from tests.netns import NamespaceHost, _free_subnets, _ip

PING = "interval: 1s, timeout: 400ms, count: 1"


def _config(path: Path, data_dir: Path, url: str | None, gateways: tuple[str, str], x: str) -> Path:
    fra_gw, ams_gw = gateways
    database = f"database: {{url: '{url}'}}\n" if url else ""
    path.write_text(
        f"{database}data_dir: {data_dir}\n"
        "collector: {agent_lease: 3s}\n"
        f"site: {{id: fra, canaries: [{{id: gw, kind: icmp, host: '{fra_gw}', {PING}}}]}}\n"
        f"sites: [{{id: ams, canaries: [{{id: gw, kind: icmp, host: '{ams_gw}', {PING}}}]}}]\n"
        "customers: [{id: acme, name: Acme}]\n"
        "links:\n"
        "  - id: hq\n"
        "    customer: acme\n"
        "    vantage: {sites: [fra, ams], quorum: 2}\n"
        f"    probes: [{{id: ping, kind: icmp, host: '{x}', {PING}, confirm: 2}}]\n"
    )
    return path


def _rows(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    try:
        with psycopg.connect(url) as conn:
            return conn.execute(sql, params or None).fetchall()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return []  # still starting, or migrating


def _count(url: str, sql: str, params: tuple[object, ...] = ()) -> int:
    rows = _rows(url, sql, params)
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]


def test_a_site_cut_off_is_unknown_time_and_a_cut_target_one_outage_from_the_quorum(
    netns_host: NamespaceHost, pg_data_dir: Path
) -> None:
    # The customer's address on the test host's loopback, and a second site's namespace
    # joined to the test host by a veth pair of its own.
    v4, _ = _free_subnets()
    customer = str(v4[5])
    ams_end, host_end = str(v4[1]), str(v4[2])
    tag = secrets.token_hex(3)
    ams, outside, inside = f"lwams-{tag}", f"lwa{tag}o", f"lwa{tag}i"
    netns_host.exec("ip", "addr", "add", f"{customer}/32", "dev", "lo")
    _ip("route", "add", f"{customer}/32", "via", netns_host.host)
    _ip("netns", "add", ams)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", outside, "netns", ams)
        _ip("link", "set", inside, "netns", netns_host.netns)
        _ip("-n", ams, "addr", "add", f"{ams_end}/29", "dev", outside)
        _ip("-n", ams, "link", "set", outside, "up")
        _ip("-n", ams, "link", "set", "lo", "up")
        _ip("-n", ams, "route", "add", f"{customer}/32", "via", host_end)
        netns_host.exec("ip", "addr", "add", f"{host_end}/29", "dev", inside)
        netns_host.exec("ip", "link", "set", inside, "up")
        _run_sites(netns_host, pg_data_dir, ams, customer, (netns_host.host, host_end), ams_end)
    finally:
        with contextlib.suppress(RuntimeError):
            _ip("route", "del", f"{customer}/32")
        with contextlib.suppress(RuntimeError):
            _ip("netns", "del", ams)


def _run_sites(
    target: NamespaceHost,
    pg_data_dir: Path,
    ams: str,
    customer: str,
    gateways: tuple[str, str],
    ams_end: str,
) -> None:
    central = _config(pg_data_dir / "central.yaml", pg_data_dir, None, gateways, customer)
    central_log = pg_data_dir / "central.log"
    run = start_linkwatch("run", "--config", str(central), "--role", "collector", log=central_log)
    with stopped_after(run, central_log):
        wait_for("the database", (pg_data_dir / "postgres" / "run").exists, 60, run, central_log)
        url = EmbeddedPostgres(pg_data_dir).start()  # shares the daemon's server
        migrated = "SELECT count(*) FROM pg_tables WHERE tablename = 'samples_announced'"
        wait_for("the migrations", lambda: _count(url, migrated) == 1, 60, run, central_log)
        agent_dir = pg_data_dir / "ams"
        agent_dir.mkdir()
        agent_config = _config(pg_data_dir / "ams.yaml", agent_dir, url, gateways, customer)
        agent_log = pg_data_dir / "ams.log"
        with agent_log.open("wb") as out:
            agent = subprocess.Popen(
                ["ip", "netns", "exec", ams, sys.executable, "-m", "linkwatch", "agent",
                 "--config", str(agent_config), "--site", "ams", "--name", "one"],
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
            )  # fmt: skip
        with stopped_after(agent, agent_log):
            up = (
                "SELECT count(*) FROM samples WHERE link_id = 'hq' AND outcome = 'up'"
                " AND probe_id = '{}'"
            )
            for probe in ("ping", "ping@ams"):
                wait_for(
                    f"{probe} measured up",
                    lambda p=probe: _count(url, up.format(p)) >= 3,  # type: ignore[misc]
                    60,
                    agent if probe.endswith("ams") else run,
                    agent_log if probe.endswith("ams") else central_log,
                )
            link_up = "SELECT count(*) FROM link_states WHERE link_id = 'hq' AND status = 'up'"
            wait_for("the link up", lambda: _count(url, link_up) >= 1, 30, run, central_log)

            # ams is cut off: the test host drops every reply to it, its canary's too.
            cut = datetime.now(UTC)
            target.exec("ip", "route", "add", "blackhole", f"{ams_end}/32")
            blind = (
                "SELECT count(*) FROM samples WHERE probe_id = 'ping@ams' AND outcome ="
                " 'unknown' AND error LIKE 'monitor blind: 1 of 1 canaries failing%'"
            )
            wait_for("ams judged blind", lambda: _count(url, blind) >= 4, 60, agent, agent_log)
            # One site of two measures it: fewer than the quorum, so the time is unknown.
            unknown = (
                "SELECT count(*) FROM link_states WHERE link_id = 'hq' AND status = 'unknown'"
                " AND starts_at >= %s"
            )
            wait_for(
                "the link unknown", lambda: _count(url, unknown, (cut,)) >= 1, 30, run, central_log
            )
            restored = datetime.now(UTC)
            target.exec("ip", "route", "del", "blackhole", f"{ams_end}/32")
            assert _count(url, "SELECT count(*) FROM link_states WHERE status = 'down'") == 0
            assert _count(url, "SELECT count(*) FROM site_blind WHERE site_id = 'ams'") == 1
            back = (
                "SELECT count(*) FROM link_states WHERE link_id = 'hq' AND status = 'up'"
                " AND starts_at >= %s"
            )
            wait_for(
                "the link up again",
                lambda: _count(url, back, (restored,)) == 1,
                60,
                run,
                central_log,
            )

            # The customer's address goes away: both sites see it, the link is down.
            target.exec("ip", "addr", "del", f"{customer}/32", "dev", "lo")
            down = "SELECT count(*) FROM link_states WHERE link_id = 'hq' AND status = 'down'"
            wait_for("the outage", lambda: _count(url, down) == 1, 60, run, central_log)
            target.exec("ip", "addr", "add", f"{customer}/32", "dev", "lo")
            (link_start,) = _rows(
                url, "SELECT starts_at FROM link_states WHERE link_id = 'hq' AND status = 'down'"
            )[0]
            firsts: dict[object, object] = dict(
                _rows(  # type: ignore[arg-type]
                    url,
                    "SELECT probe_id, max(starts_at) FROM probe_states WHERE link_id = 'hq'"
                    " AND status = 'down' GROUP BY probe_id",
                )
            )
            assert set(firsts) == {"ping", "ping@ams"}, firsts
            # From the moment the second site confirmed it: the later of their starts.
            assert isinstance(link_start, datetime)
            starts = [t for t in firsts.values() if isinstance(t, datetime)]
            assert link_start == max(starts), (link_start, firsts)
