"""Probe agents share their site's links by lease, and what they store becomes link states.

Rendezvous assignment's rules as properties; then `linkwatch agent` as an operator runs
it: two agents of one site, as subprocesses, with the database role the README grants
them, against the embedded PostgreSQL of a `linkwatch run`. They split the site's
links; one killed, its links are probed by the other within the lease, with no sample
duplicated; the central process derives the agents' samples into link states; the role
cannot delete samples. And the refusals, each with exit status 2 and what to fix.
"""

from __future__ import annotations

import re
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from collector.agents import (
    AgentIdentity,
    AgentIdTaken,
    AgentReport,
    announce,
    claim_announced,
    heartbeat,
    mark_stopped,
    register,
)
from collector.assignment import owner, share
from collector.database import Database
from collector.embedded import EmbeddedPostgres
from kernel.domain import Outcome, Sample
from tests.helpers import REPO, free_port, linkwatch, start_linkwatch, stopped_after, wait_for

LINKS = [f"l{i}" for i in range(8)]


# --- assignment ---------------------------------------------------------------------------


def test_each_link_has_exactly_one_live_agent() -> None:
    agents = ["fra/a", "fra/b", "fra/c"]
    shares = [share(LINKS * 10, agents, me) for me in agents]
    assert set().union(*shares) == set(LINKS)
    assert sum(len(s) for s in shares) == len(LINKS)
    assert owner("l0", []) is None


def test_only_the_links_of_an_agent_that_comes_or_goes_move() -> None:
    links = [f"link-{i}" for i in range(2000)]
    before = {link: owner(link, ["fra/a", "fra/b", "fra/c"]) for link in links}
    after = {link: owner(link, ["fra/a", "fra/b"]) for link in links}  # fra/c went
    moved = [link for link in links if before[link] != after[link]]
    assert moved
    assert all(before[link] == "fra/c" for link in moved)
    back = {link: owner(link, ["fra/a", "fra/b", "fra/c", "fra/d"]) for link in links}
    assert all(back[link] in (before[link], "fra/d") for link in links)
    # Spread evenly enough: each of three agents holds about a third.
    counts = [sum(1 for o in before.values() if o == a) for a in ("fra/a", "fra/b", "fra/c")]
    assert all(550 < n < 780 for n in counts), counts


# --- refusals -----------------------------------------------------------------------------


def _config(path: Path, data_dir: Path, url: str | None, lease: str = "3s") -> Path:
    canary = (
        "canaries: [{id: gw, kind: icmp, host: 127.0.0.1, interval: 1s, timeout: 500ms, count: 1}]"
    )
    ping = "kind: icmp, interval: 1s, timeout: 500ms, count: 1"
    links = "".join(
        f"  - id: {link}\n"
        "    customer: acme\n"
        "    vantage: {sites: [fra]}\n"
        f"    probes: [{{id: ping, host: 127.0.0.{i + 2}, {ping}}}]\n"
        for i, link in enumerate(LINKS)
    )
    database = f"database: {{url: '{url}'}}\n" if url else ""
    path.write_text(
        f"data_dir: {data_dir}\n"
        f"{database}"
        f"collector: {{agent_lease: {lease}}}\n"
        f"portal: {{listen: '127.0.0.1:{free_port()}'}}\n"
        f"sites: [{{id: fra, {canary}}}, {{id: ams, {canary}}}]\n"
        "customers: [{id: acme, name: Acme}]\n"
        f"links:\n{links}"
    )
    return path


def test_an_agent_for_a_site_not_defined_is_refused_naming_the_sites(tmp_path: Path) -> None:
    config = _config(tmp_path / "agent.yaml", tmp_path, "postgresql://127.0.0.1:1/none")
    result = linkwatch("agent", "--config", str(config), "--site", "nowhere")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "linkwatch: --site nowhere is not defined in the config; defined sites: fra, ams"
    )


def test_an_agent_without_a_database_url_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path / "agent.yaml", tmp_path, None)
    result = linkwatch("agent", "--config", str(config), "--site", "fra", "--name", "a")
    assert result.returncode == 2, result.stderr
    assert "an agent stores its samples in the central database: set database.url" in (
        result.stderr
    )


def test_an_agent_never_migrates_a_central_schema_that_lacks_its_tables(
    embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    name = f"empty_{int(time.time() * 1000)}"
    with psycopg.connect(embedded_postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    try:
        url = make_conninfo(embedded_postgres.url, dbname=name)
        config = _config(tmp_path / "agent.yaml", tmp_path, url)
        result = linkwatch("agent", "--config", str(config), "--site", "fra", "--name", "a")
        assert result.returncode == 2, result.stderr
        assert "run `linkwatch db migrate` on the central database first" in result.stderr
        with psycopg.connect(url) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert tables.fetchone() == (0,)  # nothing created
    finally:
        with psycopg.connect(embedded_postgres.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name}")  # type: ignore[arg-type]


# --- two agents of one site ---------------------------------------------------------------

ROLE = "linkwatch_agent_fra"


def roles_sql() -> str:
    """The README's SQL for an agent's role, as an operator would paste it."""
    readme = (REPO / "README.md").read_text()
    part = readme.split("### Roles and grants", 1)[1]
    (block,) = re.findall(r"```sql\n(.*?)```", part.split("\n## ", 1)[0], flags=re.S)
    return block


def _rows(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def _share_line(log: Path, agent: str) -> tuple[int, int] | None:
    """The latest share an agent's log reports: (links, live agents)."""
    found = re.findall(
        rf"agent share changed agent={re.escape(agent)} links=(\d+) of \d+ live_agents=(\d+)",
        log.read_text(),
    )
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def test_two_agents_split_a_site_and_one_takes_over_when_the_other_is_killed(
    pg_data_dir: Path,
) -> None:
    central = _config(pg_data_dir / "central.yaml", pg_data_dir, None)
    central_log = pg_data_dir / "central.log"
    proc = start_linkwatch("run", "--config", str(central), "--role", "collector", log=central_log)
    with stopped_after(proc, central_log):
        wait_for("the database", (pg_data_dir / "postgres" / "run").exists, 60, proc, central_log)
        owner_url = EmbeddedPostgres(pg_data_dir).start()  # shares the daemon's server

        def migrated() -> bool:
            try:
                return bool(_rows(owner_url, "SELECT to_regclass('samples_announced')")[0][0])
            except psycopg.OperationalError:
                return False

        wait_for("the migrations", migrated, 60, proc, central_log)
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute(roles_sql())  # type: ignore[arg-type]
        params = conninfo_to_dict(owner_url)
        params.pop("password", None)
        agent_url = make_conninfo(**{**params, "user": ROLE})  # type: ignore[arg-type]
        agents_dir = pg_data_dir / "agents-data"
        agents_dir.mkdir()
        config = _config(pg_data_dir / "agent.yaml", agents_dir, agent_url)
        logs = {name: pg_data_dir / f"agent-{name}.log" for name in ("a", "b")}
        a = start_linkwatch(
            "agent", "--config", str(config), "--site", "fra", "--name", "a", log=logs["a"]
        )
        with stopped_after(a, logs["a"]):
            b = start_linkwatch(
                "agent", "--config", str(config), "--site", "fra", "--name", "b", log=logs["b"]
            )
            with stopped_after(b, logs["b"]):
                # They split the site's links as rendezvous hashing says.
                expected = {me: share(LINKS, ["fra/a", "fra/b"], me) for me in ("fra/a", "fra/b")}
                for name, proc_ in (("a", a), ("b", b)):
                    want = (len(expected[f"fra/{name}"]), 2)
                    wait_for(
                        f"agent {name}'s share",
                        lambda n=name, w=want: _share_line(logs[n], f"fra/{n}") == w,
                        30,
                        proc_,
                        logs[name],
                    )
                # Each link is probed by one agent only: one sample a second, not two.
                settled = datetime.now(UTC)
                time.sleep(4)
                counts = dict(
                    _rows(  # type: ignore[arg-type]
                        owner_url,
                        "SELECT link_id, count(*) FROM samples"
                        " WHERE probe_id = 'ping@fra' AND observed_at >= %s GROUP BY link_id",
                        (settled,),
                    )
                )
                assert set(counts) == set(LINKS), counts
                assert all(2 <= n <= 6 for n in counts.values()), counts

                # The central process derives the agents' samples into link states.
                def all_up() -> bool:
                    up = _rows(
                        owner_url,
                        "SELECT count(DISTINCT link_id) FROM link_states WHERE status = 'up'",
                    )
                    return up[0][0] == len(LINKS)

                wait_for("the agents' links up", all_up, 30, proc, central_log)

                # a is killed: its links are b's within the lease (3 s) and a beat.
                killed = datetime.now(UTC)
                a.send_signal(signal.SIGKILL)
                a.wait()
                orphans = sorted(expected["fra/a"])

                def taken_over() -> bool:
                    rows = _rows(
                        owner_url,
                        "SELECT link_id, min(observed_at) FROM samples WHERE probe_id = 'ping@fra'"
                        " AND observed_at > %s AND link_id = ANY(%s) GROUP BY link_id",
                        (killed + timedelta(seconds=1), orphans),
                    )
                    return len(rows) == len(orphans)

                wait_for("b taking a's links", taken_over, 20, b, logs["b"])
                assert _share_line(logs["b"], "fra/b") == (len(LINKS), 1)
                first = _rows(
                    owner_url,
                    "SELECT max(first) FROM (SELECT min(observed_at) AS first FROM samples"
                    " WHERE probe_id = 'ping@fra' AND observed_at > %s AND link_id = ANY(%s)"
                    " GROUP BY link_id) f",
                    (killed + timedelta(seconds=1), orphans),
                )[0][0]
                assert isinstance(first, datetime)
                # Lease 3 s, a heartbeat every 0.75 s, a 1 s probe interval, start offsets.
                assert first - killed < timedelta(seconds=3 + 0.75 + 1 + 1.5), first - killed

                # No sample stored twice; the agent's role cannot delete samples.
                total, distinct = _rows(
                    owner_url,
                    "SELECT count(*), count(DISTINCT (link_id, probe_id, observed_at))"
                    " FROM samples",
                )[0]
                assert total == distinct
                # Each sample names the agent that took it; run's own none.
                takers = _rows(
                    owner_url,
                    "SELECT DISTINCT agent_id FROM samples WHERE probe_id = 'ping@fra'"
                    " ORDER BY agent_id",
                )
                assert takers == [("fra/a",), ("fra/b",)], takers
                with (
                    psycopg.connect(agent_url) as conn,
                    pytest.raises(psycopg.errors.InsufficientPrivilege),
                ):
                    conn.execute("DELETE FROM samples")
                live = _rows(owner_url, "SELECT id, stopped_at FROM agents ORDER BY id")
                assert [row[0] for row in live] == ["fra/a", "fra/b"]
            # b stopped on SIGTERM: it marked itself stopped, and a's row is left to expire.
            rows = dict(_rows(owner_url, "SELECT id, stopped_at IS NOT NULL FROM agents"))
            assert rows == {"fra/a": False, "fra/b": True}
            stats = linkwatch("db", "stats", "--config", str(central))
            assert stats.returncode == 0, stats.stderr
            agents = stats.stdout.split("Agents", 1)[1]
            assert re.search(r"fra/a .*not live", agents), stats.stdout
            assert re.search(r"fra/b .*stopped", agents), stats.stdout


# --- the rows agents keep ------------------------------------------------------------------


async def test_announcements_keep_the_earliest_sample_until_claimed(database: Database) -> None:
    t0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    def at(seconds: int, link: str = "l0") -> Sample:
        return Sample(link, "ping@fra", t0 + timedelta(seconds=seconds), Outcome.UP)

    await announce(database, [at(20), at(10), at(30, "l1")])
    await announce(database, [at(5), at(40, "l1")])  # a late one, and a newer one
    claimed = await claim_announced(database)
    assert claimed == {
        ("l0", "ping@fra"): t0 + timedelta(seconds=5),
        ("l1", "ping@fra"): t0 + timedelta(seconds=30),
    }
    assert await claim_announced(database) == {}  # claimed once


async def test_an_agent_id_is_held_by_one_live_process(database: Database) -> None:
    lease = timedelta(seconds=30)
    first = AgentIdentity("fra/a", "fra", "host-1", 100, "1")
    await register(database, first, lease)
    with pytest.raises(AgentIdTaken, match=r"agent fra/a is already running \(host host-1"):
        await register(database, AgentIdentity("fra/a", "fra", "host-2", 200, "1"), lease)
    await mark_stopped(database, first)
    second = AgentIdentity("fra/a", "fra", "host-2", 200, "1")
    await register(database, second, lease)  # a stopped agent's id is free again
    report = AgentReport(0, 0, None, 0, None)
    assert await heartbeat(database, second, report, lease) == ["fra/a"]
