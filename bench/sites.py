"""Sites at ISP scale, measured here: agents in their own network namespaces probing a
benchmark prefix, one embedded PostgreSQL, `linkwatch run` deriving what they store; then
the faults an operator fears, each with its figure.

    python -m bench.sites [--links 100000] [--sites 3] [--agents-per-site 2]
        [--interval 30s] [--minutes 5] [--faults] [--fault-minutes 2]

Every link has one ICMP probe (count 1, timeout 2 s) to its own address in 198.18.0.0/15
and is measured by 2 of the sites (rotating pairs) with quorum 2; its site's canary is
the targets' end of its veth (`bench.site_topology`). The central `linkwatch run --role
collector` measures nothing itself: every link's vantage names only agents' sites.

Reported, from one run: samples stored per second against those offered (over a steady
window, with any sample missing counted from the gaps in each measurement's series),
agents' CPU per 1,000 samples against fping's for one agent's targets (`ip netns exec
<site> fping -c 1` over the same addresses at the same average pace, its CPU time), how
far link states trail the stored samples (p99 over snapshots of every measurement), and
the CPU of the central process, PostgreSQL and the whole machine (others' work is noise
here, shown as such). With --faults: a site's uplink cut, one target cut, one agent
killed, and the central database stopped (SIGSTOP), each with its figure.

Needs root (namespaces, raw ICMP), fping and the project's venv. Sends only inside the
namespaces it makes; removes them, its processes and its data at exit, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.site_topology import Site, Topology, target_address
from collector.assignment import share
from collector.embedded import EmbeddedPostgres
from kernel.durations import parse_duration

REPO = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PROBE = "ping"
TIMEOUT_S = 2.0
SNAPSHOT_EVERY_S = 10.0


# --- processes and CPU ----------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK, sum(values[:8]) / TICK


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def start(name: str, command: list[str], log: Path) -> Proc:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    return Proc(name, popen, log)


def stop(proc: Proc, timeout_s: float = 60) -> None:
    if proc.popen.poll() is not None:
        return
    proc.popen.send_signal(signal.SIGTERM)
    try:
        proc.popen.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.popen.kill()
        proc.popen.wait()


def wait_until(what: str, check: Any, timeout_s: float, procs: Sequence[Proc] = ()) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        for proc in procs:
            if proc.popen.poll() is not None:
                raise RuntimeError(
                    f"{proc.name} exited while waiting for {what}:\n{proc.text()[-3000:]}"
                )
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.5)


def share_line(proc: Proc, agent_id: str) -> tuple[int, int] | None:
    """The agent's latest share from its log: (links, live agents)."""
    found = re.findall(
        rf"agent share changed agent={re.escape(agent_id)} links=(\d+) of \d+ live_agents=(\d+)",
        proc.text(),
    )
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.99 * (len(ordered) - 1))] if ordered else float("nan")


# --- the bench --------------------------------------------------------------------------


@dataclass
class Bench:
    links: int
    interval_s: float
    agents_per_site: int
    topology: Topology
    workdir: Path
    db: EmbeddedPostgres
    central: Proc | None = None
    agents: dict[str, Proc] = field(default_factory=dict)  # by agent id, 's0/a0'
    agent_url: dict[str, str] = field(default_factory=dict)  # by site
    stopped_db: list[int] = field(default_factory=list)
    # The oldest announcement not yet claimed, per snapshot: the lag without the
    # snapshot's own cap of three intervals.
    oldest_waiting_s: list[float] = field(default_factory=list)

    # -- set-up ----------------------------------------------------------------------------

    @property
    def sites(self) -> list[Site]:
        return self.topology.sites

    def vantage(self, index: int) -> tuple[str, str]:
        """The two sites that measure link `index`: rotating pairs."""
        n = len(self.sites)
        return self.sites[index % n].id, self.sites[(index + 1) % n].id

    def site_links(self, site_id: str) -> list[str]:
        return [f"l{i}" for i in range(self.links) if site_id in self.vantage(i)]

    @property
    def measurements(self) -> int:
        return 2 * self.links

    def write_config(self, path: Path, data_dir: Path, url: str) -> Path:
        interval = f"{self.interval_s:g}s"
        canary = "{id: gw, kind: icmp, host: %s, interval: 10s, count: 3, timeout: 1s}"
        sites = "".join(
            f"  - {{id: {s.id}, name: Site {s.id}, canaries: [{canary % s.gateway}]}}\n"
            for s in self.sites
        )
        lines = [
            f"data_dir: {data_dir}\n",
            f"database: {{url: '{url}'}}\n",
            f"sites:\n{sites}",
            "customers: [{id: isp, name: ISP}]\n",
            "links:\n",
        ]
        for i in range(self.links):
            a, b = self.vantage(i)
            lines.append(
                f"  - {{id: l{i}, customer: isp, vantage: {{sites: [{a}, {b}], quorum: 2}}, "
                f"probes: [{{id: {PROBE}, kind: icmp, host: {target_address(i)}, "
                f"interval: {interval}, count: 1, timeout: {TIMEOUT_S:g}s}}]}}\n"
            )
        path.write_text("".join(lines))
        return path

    def owner(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.db.url, autocommit=True)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self.owner() as conn:
            return conn.execute(sql, params).fetchall()

    def start_central(self, config: Path) -> None:
        python = sys.executable
        command = [python, "-m", "linkwatch", "run", "--config", str(config), "--role", "collector"]
        self.central = start("central", command, self.workdir / "central.log")

        def migrated() -> bool:
            try:
                return bool(self.rows("SELECT to_regclass('samples_announced')")[0][0])
            except psycopg.Error:
                return False

        wait_until("the central process's migrations", migrated, 600, [self.central])

    def grant_agents(self) -> None:
        """A role per site with the README's grants (collector.agents: its own rows only)."""
        params = conninfo_to_dict(self.db.url)
        for site in self.sites:
            role = f"lwbench_agent_{site.id}"
            with self.owner() as conn:
                conn.execute(f"DROP ROLE IF EXISTS {role}")
                for statement in (
                    f"CREATE ROLE {role} LOGIN",
                    f"GRANT CONNECT, TEMPORARY ON DATABASE {params['dbname']} TO {role}",
                    f"GRANT USAGE ON SCHEMA public TO {role}",
                    f"GRANT INSERT ON samples TO {role}",
                    f"GRANT SELECT, INSERT, UPDATE ON samples_announced TO {role}",
                    f"GRANT SELECT, INSERT, UPDATE ON site_blind TO {role}",
                    f"GRANT SELECT, INSERT, UPDATE ON agents TO {role}",
                ):
                    conn.execute(statement)
            self.agent_url[site.id] = make_conninfo(**{**params, "user": role})  # type: ignore[arg-type]

    def start_agent(self, site: Site, name: str) -> Proc:
        config = self.workdir / f"agent-{site.id}.yaml"
        if not config.exists():
            self.write_config(config, self.workdir / "agents", self.agent_url[site.id])
        command = ["ip", "netns", "exec", site.netns, sys.executable, "-m", "linkwatch", "agent"]
        command += ["--config", str(config), "--site", site.id, "--name", name]
        # `ip netns exec` execs the command: the pid is the agent's own.
        log = self.workdir / f"agent-{site.id}-{name}.log"
        proc = start(f"agent {site.id}/{name}", command, log)
        self.agents[f"{site.id}/{name}"] = proc
        return proc

    def wait_shares(self, timeout_s: float) -> None:
        """Until every agent's log says it holds its share among all its site's agents."""
        for site in self.sites:
            live = [a for a in self.agents if a.startswith(f"{site.id}/")]
            links = self.site_links(site.id)
            for agent_id in live:
                want = (len(share(links, live, agent_id)), len(live))
                proc = self.agents[agent_id]
                wait_until(
                    f"{agent_id}'s share",
                    lambda p=proc, a=agent_id, w=want: share_line(p, a) == w,
                    timeout_s,
                    [proc, *([self.central] if self.central else [])],
                )

    # -- measuring -------------------------------------------------------------------------

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: each agent, the central process, PostgreSQL (postmaster and
        its live children), the machine's busy time and its capacity."""
        out = {agent_id: proc_cpu(p.pid) for agent_id, p in self.agents.items()}
        assert self.central is not None
        out["central"] = proc_cpu(self.central.pid)
        postmaster = self.postmaster()
        out["postgres"] = proc_cpu(postmaster) + sum(proc_cpu(c) for c in children(postmaster))
        out["machine"], out["capacity"] = machine_busy()
        return out

    def postmaster(self) -> int:
        return int((self.db.pgdata / "postmaster.pid").read_text().split()[0])

    def lag_snapshot(self) -> tuple[list[float], int]:
        """How long each measurement's oldest underived sample of the last three
        intervals has waited (derived ones: 0), and how many announcements wait to be
        claimed."""
        underived = self.rows(
            """
            SELECT extract(epoch FROM now() - min(r.observed_at))
            FROM samples AS r
            LEFT JOIN state_progress AS p USING (link_id, probe_id)
            WHERE r.observed_at > now() - %(span)s
              AND (p.derived_through IS NULL OR r.observed_at > p.derived_through)
            GROUP BY r.link_id, r.probe_id
            """,
            {"span": timedelta(seconds=3 * self.interval_s)},
        )
        waiting, oldest = self.rows(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(earliest)), 0) "
            "FROM samples_announced"
        )[0]
        lags = [float(row[0]) for row in underived]
        self.oldest_waiting_s.append(float(oldest))
        return lags + [0.0] * max(0, self.measurements - len(lags)), int(waiting)

    def series_check(
        self,
        start: datetime,
        end: datetime,
        probe_like: str = "%",
        links: Sequence[str] | None = None,
    ) -> dict[str, float]:
        """Samples in [start, end) of the measurements chosen: how many, how many missing
        (from the gaps in each series: a cadence is fixed, so a gap of n intervals is
        n - 1 samples lost; the series are read from an interval before `start` to one
        after `end`, so that a sample a little late at either edge is not taken for a lost
        one, and the caller waits that long), the longest gap, and how many came less than
        half an interval after the one before (two agents probing one link)."""
        interval = timedelta(seconds=self.interval_s)
        chosen = "AND link_id = ANY(%(links)s)" if links is not None else ""
        (row,) = self.rows(
            f"""
            WITH s AS (
                SELECT link_id, probe_id, observed_at,
                       observed_at - lag(observed_at) OVER w AS gap
                FROM samples
                WHERE observed_at >= %(start)s - %(interval)s
                  AND observed_at < %(end)s + %(interval)s
                  AND probe_id LIKE %(probe)s {chosen}
                WINDOW w AS (PARTITION BY link_id, probe_id ORDER BY observed_at)
            ), per AS (
                SELECT link_id, probe_id,
                       count(*) FILTER (WHERE observed_at >= %(start)s
                                          AND observed_at < %(end)s) AS n,
                       coalesce(sum(round(extract(epoch FROM gap) / %(i)s) - 1)
                                FILTER (WHERE gap > 1.5 * %(interval)s), 0) AS inner_lost,
                       count(*) FILTER (WHERE gap < 0.5 * %(interval)s) AS doubled,
                       max(gap) AS longest
                FROM s GROUP BY link_id, probe_id
            )
            SELECT count(*), coalesce(sum(n), 0), coalesce(sum(inner_lost), 0),
                   coalesce(sum(doubled), 0), extract(epoch FROM max(longest))
            FROM per
            """,
            {
                "start": start,
                "end": end,
                "probe": probe_like,
                "links": list(links) if links is not None else None,
                "i": self.interval_s,
                "interval": interval,
            },
        )
        series, stored, lost, doubled, longest = row
        return {
            "series": float(series),
            "stored": float(stored),
            "lost": float(lost),
            "doubled": float(doubled),
            "longest_gap_s": float(longest or 0.0),
        }

    def steady(self, minutes: float) -> None:
        cycles = max(1, round(minutes * 60 / self.interval_s))
        window = cycles * self.interval_s
        print(f"steady window: {window:g} s ({cycles} cycles of {self.interval_s:g} s)")
        start = datetime.now(UTC)
        cpu0, wall0 = self.cpu(), time.monotonic()
        lags: list[float] = []
        backlog: list[int] = []
        snapshot_s: list[float] = []
        while time.monotonic() - wall0 < window:
            began = time.monotonic()
            snap, waiting = self.lag_snapshot()
            snapshot_s.append(time.monotonic() - began)
            lags += snap
            backlog.append(waiting)
            time.sleep(max(0.0, SNAPSHOT_EVERY_S - (time.monotonic() - began)))
            if self.central and self.central.popen.poll() is not None:
                raise RuntimeError(f"central exited:\n{self.central.text()[-3000:]}")
        end = start + timedelta(seconds=window)
        time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()))
        cpu1, wall = self.cpu(), time.monotonic() - wall0
        # The interval after the window (series_check reads it), and its last samples'
        # batch delay, write and announcement.
        time.sleep(self.interval_s + TIMEOUT_S + 8)
        got = self.series_check(start, end)
        offered = self.measurements * cycles
        print(
            f"samples stored {got['stored']:,.0f} of {offered:,} offered in the window "
            f"({got['stored'] / window:,.0f}/s of {offered / window:,.0f}/s): "
            f"stored/offered {got['stored'] / offered:.4f}, lost {got['lost']:,.0f}, "
            f"measurements with samples {got['series']:,.0f} of {self.measurements:,}, "
            f"probed twice within half an interval {got['doubled']:,.0f}"
        )
        size, rows = self.rows(
            "SELECT pg_total_relation_size('samples'), (SELECT count(*) FROM samples)"
        )[0]
        print(
            f"samples table {size / 2**20:,.0f} MiB for {rows:,} rows: "
            f"{size / max(1, rows):.0f} bytes per sample, indexes included"
        )
        used = {k: cpu1[k] - cpu0[k] for k in cpu0}
        agent_ids = list(self.agents)
        agent_cpu = sum(used[a] for a in agent_ids)
        per_1000 = agent_cpu / max(1.0, got["stored"]) * 1000
        print(
            f"agents: {agent_cpu / wall * 100:.1f} % of one core together "
            f"({', '.join(f'{a} {used[a] / wall * 100:.1f} %' for a in agent_ids)}); "
            f"{per_1000 * 1000:.1f} ms CPU per 1,000 samples"
        )
        print(
            f"central `linkwatch run`: {used['central'] / wall * 100:.1f} % of one core; "
            f"PostgreSQL (postmaster and live backends): {used['postgres'] / wall * 100:.1f} %"
        )
        ours = agent_cpu + used["central"] + used["postgres"]
        print(
            f"machine: {used['machine'] / used['capacity'] * 100:.1f} % busy of "
            f"{os.cpu_count()} cores; ours {ours / wall * 100:.1f} % of one core, everything "
            f"else (other users' work, the kernel's softirq, this bench's queries) "
            f"{(used['machine'] - ours) / wall * 100:.1f} %"
        )
        print(
            f"state lag (states behind stored samples, {len(backlog)} snapshots of every "
            f"measurement): p99 {p99(lags):.1f} s, max {max(lags, default=0):.1f} s; "
            f"announcements waiting p50 {sorted(backlog)[len(backlog) // 2]:,} max "
            f"{max(backlog):,}, the oldest of them waiting up to "
            f"{max(self.oldest_waiting_s, default=0):.0f} s; a snapshot query took up to "
            f"{max(snapshot_s):.1f} s"
        )
        self.fping_anchor(per_1000)

    def fping_anchor(self, ours_per_1000: float) -> None:
        """fping over one agent's targets, from its site, at the same average pace (its
        targets spread over one interval), once each; its CPU per 1,000 targets."""
        site = self.sites[0]
        live = [a for a in self.agents if a.startswith(f"{site.id}/")]
        mine = share(self.site_links(site.id), live, live[0])
        hosts = [target_address(int(link[1:])) for link in sorted(mine)]
        pace_ms = max(0.01, self.interval_s * 1000 / len(hosts))
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as handle:
            handle.write("\n".join(hosts) + "\n")
            handle.flush()
            command = ["ip", "netns", "exec", site.netns, "fping", "-c", "1", "-q"]
            command += ["-i", f"{pace_ms:.2f}", "-t", f"{TIMEOUT_S * 1000:g}", "-f", handle.name]
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            began = time.monotonic()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            wall = time.monotonic() - began
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        theirs = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
        answered = sum("/0%" in line for line in done.stderr.splitlines())
        theirs_per_1000 = theirs / len(hosts) * 1000
        print(
            f"fping (anchor) from {site.id}, {len(hosts):,} of {live[0]}'s targets, -c 1 -i "
            f"{pace_ms:.2f} ms: {wall:.1f} s wall, {answered:,} answered, "
            f"{theirs_per_1000 * 1000:.1f} ms CPU per 1,000 targets; agent/fping CPU "
            f"{ours_per_1000 / max(theirs_per_1000, 1e-9):.1f}x"
        )

    # -- faults ----------------------------------------------------------------------------

    def settle(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for proc in [*self.agents.values(), *([self.central] if self.central else [])]:
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited:\n{proc.text()[-3000:]}")
            time.sleep(1)

    def link_states_in(
        self, start: datetime, end: datetime, links: Sequence[str]
    ) -> dict[str, float]:
        """Seconds per status of `links` within [start, end)."""
        rows = self.rows(
            """
            SELECT status, sum(extract(epoch FROM
                   least(coalesce(ends_at, %(end)s), %(end)s) - greatest(starts_at, %(start)s)))
            FROM link_states
            WHERE link_id = ANY(%(links)s) AND starts_at < %(end)s
              AND coalesce(ends_at, 'infinity') > %(start)s
            GROUP BY status
            """,
            {"start": start, "end": end, "links": list(links)},
        )
        return {status: float(seconds) for status, seconds in rows}

    def fault_site_cut(self, seconds: float) -> None:
        site = self.sites[0]
        print(f"\nfault: site {site.id}'s uplink cut for {seconds:g} s")
        cut = datetime.now(UTC)
        self.topology.cut_site(site, True)
        try:
            self.settle(seconds)
        finally:
            self.topology.cut_site(site, False)
        back = datetime.now(UTC)
        self.settle(3 * self.interval_s + 15)
        theirs = self.site_links(site.id)
        others = [f"l{i}" for i in range(self.links) if site.id not in self.vantage(i)]
        down = self.rows(
            """SELECT count(DISTINCT link_id) FROM link_states WHERE status = 'down'
               AND starts_at < %(end)s AND coalesce(ends_at, 'infinity') > %(start)s""",
            {"start": cut, "end": back + timedelta(seconds=2 * self.interval_s)},
        )[0][0]
        outcomes: dict[str, tuple[int, datetime]] = {
            outcome: (n, last)
            for outcome, n, last in self.rows(
                """SELECT outcome, count(*), max(observed_at) FROM samples WHERE probe_id = %(p)s
                   AND observed_at >= %(start)s AND observed_at < %(end)s GROUP BY outcome""",
                {"p": f"{PROBE}@{site.id}", "start": cut, "end": back},
            )
        }
        blind = self.rows(
            "SELECT starts_at, ends_at FROM site_blind WHERE site_id = %(s)s AND "
            "coalesce(ends_at, 'infinity') > %(start)s ORDER BY starts_at",
            {"s": site.id, "start": cut},
        )
        # The site's own measurements, probe by probe: time unknown vs. down in the cut.
        probe_rows = self.rows(
            """
            SELECT status, sum(extract(epoch FROM
                   least(coalesce(ends_at, %(end)s), %(end)s) - greatest(starts_at, %(start)s)))
            FROM probe_states WHERE probe_id = %(p)s AND starts_at < %(end)s
              AND coalesce(ends_at, 'infinity') > %(start)s
            GROUP BY status
            """,
            {"p": f"{PROBE}@{site.id}", "start": cut, "end": back},
        )
        probe_time = {status: float(s) for status, s in probe_rows}
        span = (back - cut).total_seconds()
        total = span * len(theirs)
        mine = self.link_states_in(cut, back, theirs)
        rest = self.link_states_in(cut, back, others) if others else {}
        print(
            f"  links DOWN during the cut: {down} (any link); {site.id}'s samples in the cut: "
            + ", ".join(
                f"{k} {n:,} (last {(last - cut).total_seconds():+.1f} s)"
                for k, (n, last) in sorted(outcomes.items())
            )
        )
        # Each agent of the site records the span it sees; together they cover the cut.
        first = min((s for s, _ in blind), default=None)
        ends = [e for _, e in blind]
        last = None if None in ends or not ends else max(e for e in ends if e is not None)
        print(
            f"  blind spans recorded for {site.id}: {len(blind)} row(s), together from "
            + (f"{(first - cut).total_seconds():+.1f} s after the cut to " if first else "- to ")
            + (f"{(last - back).total_seconds():+.1f} s from the restore" if last else "open")
        )
        print(
            f"  {site.id}'s measurements over the cut: unknown "
            f"{probe_time.get('unknown', 0) / total * 100:.1f} %, down "
            f"{probe_time.get('down', 0) / total * 100:.2f} %, "
            f"up {probe_time.get('up', 0) / total * 100:.1f} % "
            f"(the last sample before the cut holds until the next one)"
        )
        print(
            f"  its {len(theirs):,} links (quorum 2 of 2 sites, so no quorum without it): "
            + ", ".join(f"{k} {v / total * 100:.1f} %" for k, v in sorted(mine.items()))
            + (
                f"; the {len(others):,} links it does not measure: "
                + ", ".join(
                    f"{k} {v / (span * len(others)) * 100:.1f} %" for k, v in sorted(rest.items())
                )
                if others
                else ""
            )
        )

    def fault_target_cut(self, seconds: float) -> None:
        link, address = "l0", target_address(0)
        hold = max(seconds, 4 * self.interval_s)
        print(
            f"\nfault: target {address} ({link}, measured by "
            f"{', '.join(self.vantage(0))}) cut for {hold:g} s"
        )
        cut = datetime.now(UTC)
        self.topology.cut_target(address, True)
        try:
            self.settle(hold)
        finally:
            self.topology.cut_target(address, False)
        back = datetime.now(UTC)
        self.settle(2 * self.interval_s + 15)
        firsts = dict(
            self.rows(
                """SELECT probe_id, min(observed_at) FROM samples WHERE link_id = %(l)s
                   AND observed_at >= %(cut)s AND outcome = 'down' GROUP BY probe_id""",
                {"l": link, "cut": cut},
            )
        )
        recovered = dict(
            self.rows(
                """SELECT probe_id, min(observed_at) FROM samples WHERE link_id = %(l)s
                   AND observed_at >= %(back)s AND outcome = 'up' GROUP BY probe_id""",
                {"l": link, "back": back},
            )
        )
        outages = self.rows(
            """SELECT starts_at, ends_at, probe_ids FROM incidents WHERE link_id = %(l)s
               AND starts_at >= %(cut)s ORDER BY starts_at""",
            {"l": link, "cut": cut},
        )
        expected_start = max(firsts.values()) if len(firsts) >= 2 else None
        expected_end = min(recovered.values()) if recovered else None
        print(
            "  first down sample per site: "
            + ", ".join(
                f"{p} {(t - cut).total_seconds():+.1f} s" for p, t in sorted(firsts.items())
            )
        )
        for starts, ends, probes in outages:
            start_ok = (
                "= the quorum's start" if starts == expected_start else f"expected {expected_start}"
            )
            end_ok = "= first up sample" if ends == expected_end else f"expected {expected_end}"
            print(
                f"  outage {(starts - cut).total_seconds():+.1f} s to "
                f"{(ends - cut).total_seconds() if ends else float('nan'):+.1f} s after the cut "
                f"({start_ok}; end {end_ok}), seen by {', '.join(probes)}"
            )
        print(f"  outages recorded for {link}: {len(outages)} (expected 1)")

    def fault_agent_killed(self) -> None:
        victim_id = next(
            a for a in self.agents if a.startswith(f"{self.sites[1 % len(self.sites)].id}/")
        )
        site_id = victim_id.split("/")[0]
        site = next(s for s in self.sites if s.id == site_id)
        peers = [a for a in self.agents if a.startswith(f"{site_id}/") and a != victim_id]
        if not peers:
            print("\nfault: agent killed — skipped, the site has one agent")
            return
        links = self.site_links(site_id)
        moved = sorted(share(links, [victim_id, *peers], victim_id))
        print(f"\nfault: agent {victim_id} killed (SIGKILL), {len(moved):,} links to move")
        victim = self.agents.pop(victim_id)
        killed, kill_wall = datetime.now(UTC), time.monotonic()
        victim.popen.kill()
        victim.popen.wait()
        for peer in peers:
            want = len(share(links, peers, peer)), len(peers)
            proc = self.agents[peer]
            wait_until(
                f"{peer} to take over",
                lambda p=proc, a=peer, w=want: share_line(p, a) == w,
                300,
                [proc],
            )
        took = time.monotonic() - kill_wall
        self.settle(2 * self.interval_s + 10)
        # The killed agent comes back (as an operator restarts it); its links move back.
        self.start_agent(site, victim_id.split("/")[1])
        self.wait_shares(300)
        self.settle(2 * self.interval_s + 10)
        end = datetime.now(UTC) - timedelta(seconds=self.interval_s + TIMEOUT_S + 5)
        start = killed - timedelta(seconds=2 * self.interval_s)
        got = self.series_check(start, end, f"{PROBE}@{site_id}", moved)
        every = self.series_check(start, end, f"{PROBE}@{site_id}")
        rows = self.rows(
            "SELECT count(*) - count(DISTINCT (link_id, probe_id, observed_at)) FROM samples "
            "WHERE observed_at >= %(s)s",
            {"s": start},
        )
        down = self.link_states_in(killed, end, moved).get("down", 0.0)
        print(
            f"  links moved {took:.1f} s after the kill (lease "
            f"{60:g} s by default); longest gap in a moved link's series "
            f"{got['longest_gap_s']:.1f} s ({got['lost']:,.0f} samples not taken: unknown "
            f"time, link down {down:.0f} s)"
        )
        print(
            f"  after the restart their links moved back; over the whole fault, rows stored "
            f"twice {rows[0][0]}, samples of {site_id} less than half an interval after the "
            f"one before (two agents probing one link while it moved) {every['doubled']:,.0f}"
        )

    def fault_database_stopped(self, seconds: float) -> None:
        postmaster = self.postmaster()
        group = [postmaster, *children(postmaster)]
        print(
            f"\nfault: central database stopped (SIGSTOP, {len(group)} processes) for {seconds:g} s"
        )
        stopped = datetime.now(UTC)
        spool_peak = 0
        self.stopped_db = group
        for pid in group:
            os.kill(pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                spool_peak = max(spool_peak, _tree_bytes(self.workdir / "agents"))
                time.sleep(2)
        finally:
            for pid in group:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            self.stopped_db = []
        resumed, wall0 = datetime.now(UTC), time.monotonic()

        def drained() -> bool:
            return self.rows(
                "SELECT coalesce(sum(queued), 0) FROM agents WHERE stopped_at IS NULL"
            )[0][0] == 0 and (_tree_bytes(self.workdir / "agents") < 1024 * 1024)

        wait_until("the agents' spools to drain", drained, 1800, list(self.agents.values()))
        drain = time.monotonic() - wall0
        self.settle(2 * self.interval_s)
        end = datetime.now(UTC) - timedelta(seconds=self.interval_s + TIMEOUT_S + 5)
        got = self.series_check(stopped - timedelta(seconds=self.interval_s), end)
        lags, waiting = self.lag_snapshot()
        print(
            f"  agents' spools peaked at {spool_peak / 2**20:.1f} MiB on disk; spools reported "
            f"empty {drain:.0f} s after the database resumed"
        )
        print(
            f"  samples over the stop and after: {got['stored']:,.0f} stored, lost "
            f"{got['lost']:,.0f}, probed twice {got['doubled']:,.0f}; state lag now p99 "
            f"{p99(lags):.1f} s, announcements waiting {waiting:,}"
        )
        del resumed


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """SIGTERM like Ctrl-C, so that the clean-up runs for both."""

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--agents-per-site", type=int, default=2)
    parser.add_argument("--interval", default="30s")
    parser.add_argument("--minutes", type=float, default=5.0, help="the steady window")
    parser.add_argument("--faults", action="store_true")
    parser.add_argument(
        "--fault-minutes",
        type=float,
        default=2.0,
        help="how long a site is cut and the database stopped",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directory (logs)")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("fping") is None or shutil.which("ip") is None:
        sys.exit("needs root (network namespaces, raw ICMP sockets), iproute2 and fping")
    if args.sites < 2:
        sys.exit("--sites: at least 2 (each link is measured by 2 sites, quorum 2)")
    interval_s = parse_duration(args.interval).total_seconds()

    workdir = Path(tempfile.mkdtemp(prefix="linkwatch-bench-sites-", dir="/var/tmp"))
    workdir.chmod(0o711)  # the server runs as an unprivileged user and must enter it
    load = os.getloadavg()
    print(
        f"{args.links:,} links x 1 ICMP probe (count 1, timeout {TIMEOUT_S:g} s) every "
        f"{interval_s:g} s, each from 2 of {args.sites} sites (quorum 2), "
        f"{args.agents_per_site} agents a site: {2 * args.links / interval_s:,.0f} samples/s "
        f"offered; {os.cpu_count()} cores, load average before {load[0]:.2f}; data {workdir}"
    )
    db = EmbeddedPostgres(workdir / "db")
    bench: Bench | None = None
    topology: Topology | None = None
    try:
        with interrupts_as_exceptions():
            topology = Topology(args.sites)
            url = db.start()
            bench = Bench(args.links, interval_s, args.agents_per_site, topology, workdir, db)
            began = time.monotonic()
            config = bench.write_config(workdir / "central.yaml", workdir / "central", url)
            bench.start_central(config)
            bench.grant_agents()
            for site in topology.sites:
                for n in range(args.agents_per_site):
                    # One at a time, as agents on their own hosts would: reading a config
                    # of 100,000 links takes a core for half a minute, and seven at once on
                    # two cores overrun the reader's 60 s bound.
                    agent = bench.start_agent(site, f"a{n}")
                    wait_until(
                        f"{agent.name} to start",
                        lambda a=agent: "agent started" in a.text(),
                        600,
                        [agent],
                    )
            bench.wait_shares(600)
            print(f"set up in {time.monotonic() - began:.0f} s; warming up for two cycles")
            bench.settle(2 * interval_s + 10)
            bench.steady(args.minutes)
            if args.faults:
                seconds = args.fault_minutes * 60
                bench.fault_site_cut(seconds)
                bench.fault_target_cut(seconds)
                bench.fault_agent_killed()
                bench.fault_database_stopped(seconds)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if bench is not None:
                for pid in bench.stopped_db:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
                for proc in bench.agents.values():
                    stop(proc)
                if bench.central is not None:
                    stop(bench.central, 120)
            db.stop()
            if topology is not None:
                topology.close()
            if args.keep:
                print(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
