"""Faults the spool exists for, with real processes and a real PostgreSQL: a process killed
while it appends and replays, the database stopped under a steady stream of samples,
`linkwatch run` killed while it spools and started again, its database hung (every postgres
process stopped) or its embedded server killed, what a SIGKILL of `linkwatch run` loses,
and a configured database that is watched but never restarted."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from collector.database import connect
from collector.embedded import EmbeddedPostgres
from collector.pipeline import PipelineSettings, SamplePipeline
from collector.settings import StorageSettings
from collector.spool import Spool, inspect_spool, read_pending
from kernel.domain import Outcome, Sample
from tests.helpers import (
    FAST_HASHER,
    REPO,
    browser,
    free_port,
    login,
    start_linkwatch,
    stopped_after,
    wait_for,
)

SAMPLE_COLUMNS = (
    "link_id, probe_id, observed_at, outcome, rtt_ms, rtt_min_ms, rtt_max_ms, jitter_ms,"
    " loss_pct, error"
)


def stored_samples(url: str) -> list[Sample]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT {SAMPLE_COLUMNS} FROM samples").fetchall()
    return [Sample(r[0], r[1], r[2], Outcome(r[3]), *r[4:]) for r in rows]


# --- killed at any point ------------------------------------------------------------------

# Appends numbered batches and acknowledges the oldest now and then, printing each step
# only once it has returned, until it is killed.
_APPENDER = textwrap.dedent(
    """
    import asyncio, random, sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from collector.spool import Spool
    from kernel.domain import Outcome, Sample

    def batch(n):
        at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
        return [Sample(f"l{n}", f"p{i}", at, Outcome.UP, rtt_ms=n + i / 7) for i in range(20)]

    async def main():
        spool = await Spool.open(Path(sys.argv[1]), max_bytes=10**9, segment_bytes=2048)
        n = int(sys.argv[2])
        print("ready", flush=True)
        while True:
            await spool.append(batch(n))
            print("append", n, flush=True)
            n += 1
            if random.random() < 0.4:
                item = await spool.peek()
                if item is not None:
                    await spool.ack(item[0])
                    print("ack", item[1][0].link_id[1:], flush=True)

    asyncio.run(main())
    """
)


def _ids(spool_dir: Path) -> list[int]:
    ids = []
    for batch in read_pending(spool_dir):
        assert len(batch) == 20  # never a partial batch or garbage
        assert {s.link_id for s in batch} == {batch[0].link_id}
        ids.append(int(batch[0].link_id[1:]))
    return ids


async def test_a_process_killed_at_any_point_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    rng = random.Random(7)
    expected: list[int] = []  # what the spool holds before each round
    next_batch = 0
    for _round in range(6):
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _APPENDER,
            str(spool_dir),
            str(next_batch),
            stdout=subprocess.PIPE,
            cwd=REPO,
        )
        assert child.stdout is not None
        assert await child.stdout.readline() == b"ready\n"
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        output, _ = await child.communicate()
        appended, acked = [], set()
        # A line the kill cut short counts as not printed.
        for line in output.decode().split("\n")[:-1]:
            step, number = line.split()
            (appended.append if step == "append" else acked.add)(int(number))
        assert appended, "the child was killed before its first append returned"

        replayed = _ids(spool_dir)
        should = sorted((set(expected) | set(appended)) - acked)
        assert replayed == sorted(replayed)
        assert not set(replayed) & acked
        # Only an ack cut short after its position was durable may be missing (the
        # oldest); only an append cut short after its fsync may be extra (the next one).
        missing = set(should) - set(replayed)
        assert missing <= {should[0]}, (missing, should)
        assert set(replayed) - set(should) <= {appended[-1] + 1}

        # Reopen as the next process does (a torn tail is cut off here), replay about
        # half as a replayer would, and go round again.
        spool = await Spool.open(spool_dir, max_bytes=10**9)
        assert [int(s[0].link_id[1:]) for s in read_pending(spool_dir)] == replayed
        for _ in range(len(replayed) // 2):
            item = await spool.peek()
            assert item is not None
            await spool.ack(item[0])
        await spool.close()
        expected = replayed[len(replayed) // 2 :]
        assert _ids(spool_dir) == expected
        next_batch = appended[-1] + 2


# --- the database away under a steady stream ----------------------------------------------

OUTAGE_S = 30
RATE_PER_S = 300
T0 = datetime(2025, 6, 1, tzinfo=UTC)


async def test_a_30s_database_outage_loses_and_doubles_nothing(pg_data_dir: Path) -> None:
    server = EmbeddedPostgres(pg_data_dir)
    url = await asyncio.to_thread(server.start)
    db = await connect(StorageSettings(url=url, data_dir=pg_data_dir), acquire_timeout_s=1)
    pipeline = await SamplePipeline.open(
        db,
        PipelineSettings(
            spool_dir=pg_data_dir / "spool",
            spool_max_bytes=64 * 1024 * 1024,
            batch_size=100,
            batch_delay=timedelta(milliseconds=200),
            replay_max_retry_delay=timedelta(seconds=1),
        ),
    )
    generated: list[Sample] = []
    producing = asyncio.Event()
    producing.set()

    async def produce() -> None:
        """Three probes every 10 ms, on a fixed cadence, each sample unique."""
        tick = 0
        next_at = time.monotonic()
        while producing.is_set():
            for link in ("a", "b", "c"):
                sample = Sample(
                    link_id=f"link-{link}",
                    probe_id="icmp",
                    observed_at=T0 + timedelta(microseconds=10_001 * tick),
                    outcome=Outcome.DOWN if tick % 17 == 0 else Outcome.UP,
                    rtt_ms=None if tick % 17 == 0 else 0.1 * tick,
                    loss_pct=100.0 if tick % 17 == 0 else 0.0,
                    error="timeout" if tick % 17 == 0 else None,
                )
                await pipeline.queue.put(sample)
                generated.append(sample)
            tick += 1
            next_at += 3 / RATE_PER_S
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    running = asyncio.create_task(pipeline.run(), name="pipeline")
    producer = asyncio.create_task(produce(), name="producer")
    try:
        await asyncio.sleep(3)
        await asyncio.to_thread(server.stop)
        stopped_at = len(generated)
        await asyncio.sleep(OUTAGE_S)
        during = pipeline.status()
        assert during.samples_pending > RATE_PER_S * (OUTAGE_S - 5)  # on disk, not in memory
        assert during.oldest_pending_at is not None
        assert during.oldest_pending_at <= generated[stopped_at].observed_at
        await asyncio.to_thread(server.start)
        await asyncio.sleep(3)
        producing.clear()
        await producer
        await asyncio.wait_for(pipeline.queue.join(), timeout=30)
        # The pool reconnects on its own exponential backoff (1, 2, 4, 8, 16, 32 s ...),
        # so after a 30 s outage its next attempt may come up to ~35 s after the restart.
        deadline = time.monotonic() + 60
        while pipeline.spool.has_pending:
            assert time.monotonic() < deadline, f"spool not drained: {pipeline.status()}"
            await asyncio.sleep(0.1)
        await pipeline.stop()
        await running
    finally:
        producing.clear()
        producer.cancel()
        await pipeline.stop()
        await asyncio.gather(running, producer, return_exceptions=True)
        await db.close()
        await asyncio.to_thread(server.stop)

    with EmbeddedPostgres(pg_data_dir) as again:
        stored = stored_samples(again.url)
    assert len(stored) == len(generated)
    assert set(stored) == set(generated)
    assert pipeline.sink.spooled > RATE_PER_S * OUTAGE_S * 0.8
    assert pipeline.replayer.replayed >= pipeline.sink.spooled - 3 * 100  # all but in-flight
    assert pipeline.writer.dropped == 0
    assert read_pending(pg_data_dir / "spool") == []


# --- linkwatch run, killed while spooling -------------------------------------------------


def write_config(directory: Path, url: str, closed_port: int) -> Path:
    config = directory / "linkwatch.yaml"
    config.write_text(
        f"""\
data_dir: {directory / "lw"}
database: {{url: "{url}"}}
collector: {{batch_delay: 200ms, spool_max_mb: 8}}
customers:
  - {{id: alpha, name: Alpha GmbH}}
links:
  - id: alpha-hq
    customer: alpha
    probes:
      - {{id: icmp, kind: icmp, host: 127.0.0.1, interval: 200ms, count: 1,
          timeout: 150ms}}
      - {{id: tcp, kind: tcp, host: 127.0.0.1, port: {closed_port}, interval: 200ms,
          timeout: 150ms}}
"""
    )
    return config


def _count(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM samples").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


async def test_samples_spooled_by_a_killed_linkwatch_reach_the_database_after_restart(
    pg_data_dir: Path,
) -> None:
    server = EmbeddedPostgres(pg_data_dir / "db")
    url = await asyncio.to_thread(server.start)
    config = write_config(pg_data_dir, url, free_port())
    spool_dir = pg_data_dir / "lw" / "spool"
    first_log, second_log = pg_data_dir / "first.log", pg_data_dir / "second.log"
    first = start_linkwatch("run", "--role", "collector", "--config", str(config), log=first_log)
    try:
        with stopped_after(first, first_log):
            await asyncio.to_thread(
                wait_for, "samples in the database", lambda: _count(url) >= 4, 30, first, first_log
            )
            await asyncio.to_thread(server.stop)
            # The first write after the outage waits for the pool (10 s), then batches spool.
            await asyncio.to_thread(
                wait_for,
                "samples in the spool",
                lambda: inspect_spool(spool_dir, max_bytes=1).records_pending >= 3,
                40,
                first,
                first_log,
            )
            await asyncio.sleep(2)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)

        spooled = [s for batch in read_pending(spool_dir) for s in batch]
        assert len(spooled) >= 10
        assert {s.probe_id for s in spooled} == {"icmp", "tcp"}
        assert all(s.outcome == Outcome.DOWN for s in spooled if s.probe_id == "tcp")

        await asyncio.to_thread(server.start)
        before = {(s.link_id, s.probe_id, s.observed_at) for s in stored_samples(url)}
        # Delivery is at least once: a batch committed just as the server went away, whose
        # state derivation then failed, is spooled too. Most of the spool never arrived.
        only_spooled = {(s.link_id, s.probe_id, s.observed_at) for s in spooled} - before
        assert len(only_spooled) >= 10
        second = start_linkwatch(
            "run", "--role", "collector", "--config", str(config), log=second_log
        )

        def replayed() -> bool:
            return inspect_spool(spool_dir, max_bytes=1).records_pending == 0 and set(
                spooled
            ) <= set(stored_samples(url))

        with stopped_after(second, second_log, timeout_s=30):
            await asyncio.to_thread(
                wait_for, "the spool replayed", replayed, 30, second, second_log
            )
    finally:
        await asyncio.to_thread(server.stop)

    output = second_log.read_text()
    assert "Traceback" not in output
    assert "spool opened" in output
    assert f"samples_pending={len(spooled)}" in output
    with EmbeddedPostgres(pg_data_dir / "db") as again:
        with psycopg.connect(again.url) as conn:
            counts = conn.execute(
                "SELECT link_id, probe_id, observed_at, count(*) FROM samples"
                " GROUP BY link_id, probe_id, observed_at"
            ).fetchall()
        stored = stored_samples(again.url)
    assert all(count == 1 for *_, count in counts)
    assert set(spooled) <= set(stored)  # every field as spooled
    assert read_pending(spool_dir) == []
    assert list(spool_dir.glob("*.seg")) == []


# --- linkwatch run while its database hangs (every postgres process stopped) -------------

HUNG_S = 12
PROBE_INTERVAL_S = 0.4
LINKS = 20


def postgres_processes(data_dir: Path) -> list[int]:
    """The postmaster of the embedded cluster under `data_dir` and all its children."""
    postmaster = int((data_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": the name may hold spaces, so split after it.
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


def write_busy_config(
    directory: Path, port: int, *, write_timeout: str | None, batch_delay: str = "200ms"
) -> Path:
    """LINKS links each probed by TCP every PROBE_INTERVAL_S (the portal's own port, so
    they are up), a queue that holds only a few seconds of samples, the embedded server."""
    timeout = f", write_timeout: {write_timeout}" if write_timeout else ""
    links = "".join(
        f"""\
  - id: link-{n:02d}
    customer: alpha
    probes:
      - {{id: tcp, kind: tcp, host: 127.0.0.1, port: {port}, interval: 400ms,
          timeout: 300ms}}
"""
        for n in range(LINKS)
    )
    config = directory / "linkwatch.yaml"
    config.write_text(
        f"""\
data_dir: {directory / "lw"}
portal: {{listen: "127.0.0.1:{port}"}}
collector: {{batch_delay: {batch_delay}, queue_size: 300{timeout}}}
customers:
  - {{id: alpha, name: Alpha GmbH}}
links:
{links}"""
    )
    return config


def http_get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def log_time(line: str) -> datetime:
    return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))


def first_line(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


async def test_a_hung_database_spools_after_the_write_bound_and_no_probe_run_is_skipped(
    pg_data_dir: Path,
) -> None:
    import json

    port = free_port()
    config = write_busy_config(pg_data_dir, port, write_timeout="2s")
    log = pg_data_dir / "linkwatch.log"
    proc = start_linkwatch("run", "--config", str(config), log=log)
    base = f"http://127.0.0.1:{port}"
    data_dir = pg_data_dir / "lw"
    with stopped_after(proc, log):
        await asyncio.to_thread(
            wait_for, "the portal", lambda: http_get(f"{base}/readyz")[0] == 200, 60, proc, log
        )
        await asyncio.sleep(3)  # a steady stream into the database first
        paused = postgres_processes(data_dir)
        assert len(paused) >= 3  # the postmaster and its helpers
        for pid in paused:
            os.kill(pid, signal.SIGSTOP)
        hung_at = datetime.now(UTC)
        try:
            # Past the 2 s bound the writes go to the spool, and the log says so at once,
            # not when the database comes back.
            await asyncio.to_thread(
                wait_for,
                "spooling to be logged",
                lambda: "spooling samples to disk" in log.read_text(),
                8,
                proc,
                log,
            )
            await asyncio.to_thread(
                wait_for,
                "/readyz to fail",
                lambda: http_get(f"{base}/readyz")[0] == 503,
                8,
                proc,
                log,
            )
            await asyncio.sleep(HUNG_S - (datetime.now(UTC) - hung_at).total_seconds())
            status, body = http_get(f"{base}/healthz")
            assert status == 200  # the process itself is alive and keeps every sample
            health = json.loads(body)
            assert health["database"]["reachable"] is False
            assert health["spool"]["samples_pending"] > LINKS / PROBE_INTERVAL_S * (HUNG_S - 4)
            status, body = http_get(f"{base}/readyz")
            assert status == 503
            assert json.loads(body)["ready"] is False
        finally:
            for pid in paused:
                os.kill(pid, signal.SIGCONT)
        resumed_at = datetime.now(UTC)
        await asyncio.to_thread(
            wait_for,
            "the spool to drain",
            lambda: "spool drained" in log.read_text() and http_get(f"{base}/readyz")[0] == 200,
            30,
            proc,
            log,
        )
        status, body = http_get(f"{base}/healthz")
        health = json.loads(body)
        assert health["database"]["reachable"] is True
        assert health["spool"]["samples_pending"] == 0
        await asyncio.sleep(2)

    output = log.read_text()
    assert "Traceback" not in output
    assert "probe behind schedule" not in output  # probing never waited on the database
    spooling = first_line(output, "spooling samples to disk")
    assert hung_at < log_time(spooling) < hung_at + timedelta(seconds=4)
    assert log_time(first_line(output, "spool drained")) > resumed_at
    taken = int(first_line(output, "collector stopped").split("samples_taken=")[1].split()[0])

    with EmbeddedPostgres(data_dir) as server, psycopg.connect(server.url) as conn:
        rows = conn.execute(
            "SELECT link_id, observed_at FROM samples ORDER BY link_id, observed_at"
        ).fetchall()
    assert len(rows) == taken  # every sample taken is stored, once
    by_link: dict[str, list[datetime]] = {}
    for link_id, observed_at in rows:
        by_link.setdefault(link_id, []).append(observed_at)
    assert len(by_link) == LINKS
    for link_id, times in by_link.items():
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        # No probe stalled for a run's length: each kept its cadence through the hang
        # (a run may start a little late on a busy machine; a skipped one is logged).
        assert max(gaps) < PROBE_INTERVAL_S * 2, (link_id, max(gaps))


# --- linkwatch run when its embedded database is killed ------------------------------------


def write_supervised_config(directory: Path, port: int) -> Path:
    """The busy config, plus an operations account to read /noc with."""
    config = write_busy_config(directory, port, write_timeout="2s")
    hashed = FAST_HASHER.hash(NOC_PASSWORD)
    config.write_text(
        config.read_text() + f'users:\n  - {{name: noc, role: ops, password_hash: "{hashed}"}}\n'
    )
    return config


NOC_PASSWORD = "noc-password"


async def test_a_killed_embedded_database_is_restarted_with_backoff_and_nothing_is_lost(
    pg_data_dir: Path,
) -> None:
    import json

    port = free_port()
    config = write_supervised_config(pg_data_dir, port)
    log = pg_data_dir / "linkwatch.log"
    proc = start_linkwatch("run", "--config", str(config), log=log)
    base = f"http://127.0.0.1:{port}"
    data_dir = pg_data_dir / "lw"
    conf = data_dir / "postgres" / "data" / "postgresql.conf"
    with stopped_after(proc, log):
        try:
            await asyncio.to_thread(
                wait_for, "the portal", lambda: http_get(f"{base}/readyz")[0] == 200, 60, proc, log
            )
            async with browser() as noc:
                await login(noc, base, "noc", NOC_PASSWORD)
                async with noc.get(f"{base}/noc") as response:
                    assert response.status == 200
                    assert "stopped unexpectedly" not in await response.text()
                await asyncio.sleep(2)

                # The server cannot start again at first: its config file is gone, so the
                # first attempts fail and the supervisor backs off.
                conf.rename(conf.with_suffix(".away"))
                postmaster = postgres_processes(data_dir)[0]
                os.kill(postmaster, signal.SIGKILL)
                killed_at = datetime.now(UTC)
                await asyncio.to_thread(
                    wait_for,
                    "two failed restart attempts",
                    lambda: log.read_text().count("embedded postgres restart failed") >= 2,
                    20,
                    proc,
                    log,
                )
                status, body = http_get(f"{base}/healthz")
                assert status == 200
                database = json.loads(body)["database"]
                assert database["reachable"] is False
                assert database["restart_attempts"] >= 2
                assert database["next_restart_at"] is not None
                assert http_get(f"{base}/readyz")[0] == 503
                # Pages cannot tell who is signed in without the database: they say so at
                # once rather than after the pool's 10 s wait for a connection.
                asked = time.monotonic()
                async with noc.get(f"{base}/noc") as response:
                    assert response.status == 503
                assert time.monotonic() - asked < 6

                conf.with_suffix(".away").rename(conf)
                await asyncio.to_thread(
                    wait_for,
                    "the restart and the spool replayed",
                    lambda: (
                        "spool drained" in log.read_text() and http_get(f"{base}/readyz")[0] == 200
                    ),
                    90,
                    proc,
                    log,
                )
                restarted = json.loads(http_get(f"{base}/healthz")[1])["database"]
                assert restarted["reachable"] is True
                assert restarted["restarts"] == 1
                assert restarted["restart_attempts"] == 0

                async def noc_notice() -> str:
                    async with noc.get(f"{base}/noc") as response:
                        assert response.status == 200  # the same session: nothing was lost
                        return await response.text()

                deadline = time.monotonic() + 20  # the board is cached for a few seconds
                while "stopped unexpectedly" not in (page := await noc_notice()):
                    assert time.monotonic() < deadline, page
                    await asyncio.sleep(1)
                assert "restarted once since Linkwatch started" in page
            await asyncio.sleep(2)
        finally:
            if conf.with_suffix(".away").exists():
                conf.with_suffix(".away").rename(conf)

    output = log.read_text()
    assert "Traceback" not in output
    assert "probe behind schedule" not in output
    # One line for the outage, one per restart attempt, none from the pool per connection.
    assert output.count("database unreachable") == 1
    assert log_time(first_line(output, "database unreachable")) >= killed_at
    failures = [line for line in output.splitlines() if "embedded postgres restart failed" in line]
    retries = [float(line.split("retry_in_s=")[1].split()[0]) for line in failures]
    assert [int(line.split("attempt=")[1].split()[0]) for line in failures] == list(
        range(1, len(failures) + 1)
    )
    assert retries == [min(2.0**n, 60.0) for n in range(1, len(failures) + 1)]
    success = [line for line in output.splitlines() if "embedded postgres restarted" in line]
    assert len(success) == 1
    assert f"attempt={len(failures) + 1} " in success[0]
    assert " psycopg" not in output  # no warning storm from the connection pool
    taken = int(first_line(output, "collector stopped").split("samples_taken=")[1].split()[0])
    with EmbeddedPostgres(data_dir) as server, psycopg.connect(server.url) as conn:
        row = conn.execute("SELECT count(*) FROM samples").fetchone()
    assert row is not None
    assert row[0] == taken


# --- linkwatch run killed outright (SIGKILL): what it held in memory ----------------------

BATCH_DELAY_S = 1.0  # the default
WRITE_TIMEOUT_S = 2.0
SLACK_S = 1.0  # a loaded test machine's scheduling


def loss_windows(url: str, killed_at: datetime) -> dict[str, float]:
    """Per link, how long before the kill its newest stored sample was taken: the
    samples of that window were taken (or not yet due) and never stored."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT link_id, max(observed_at) FROM samples WHERE observed_at < %s GROUP BY 1",
            (killed_at,),
        ).fetchall()
    return {link_id: (killed_at - newest).total_seconds() for link_id, newest in rows}


def cadence_gaps(url: str, since: datetime, until: datetime) -> float:
    """The longest pause between two stored samples of one link taken in [since, until)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT max(gap) FROM (SELECT extract(epoch FROM observed_at - lag(observed_at)"
            " OVER (PARTITION BY link_id ORDER BY observed_at)) AS gap FROM samples"
            " WHERE observed_at >= %s AND observed_at < %s) AS gaps",
            (since, until),
        ).fetchone()
    assert row is not None
    return float(row[0])


async def test_a_sigkill_loses_at_most_the_batch_in_memory_even_while_the_database_hangs(
    pg_data_dir: Path,
) -> None:
    """The README's promise: a killed process loses what it had not yet written or
    spooled, at most `batch_delay` plus a write in flight, and a write never holds samples
    in memory longer than `write_timeout` however long the database hangs."""
    port = free_port()
    config = write_busy_config(
        pg_data_dir, port, write_timeout=f"{WRITE_TIMEOUT_S:g}s", batch_delay="1s"
    )
    data_dir = pg_data_dir / "lw"
    base = f"http://127.0.0.1:{port}"
    logs = [pg_data_dir / f"linkwatch-{n}.log" for n in range(3)]
    running = contextlib.ExitStack()

    async def start(log: Path) -> subprocess.Popen[bytes]:
        proc = start_linkwatch("run", "--config", str(config), log=log)
        running.enter_context(stopped_after(proc, log))
        await asyncio.to_thread(
            wait_for, "the portal", lambda: http_get(f"{base}/readyz")[0] == 200, 60, proc, log
        )
        return proc

    paused: list[int] = []
    with running:
        try:
            # A healthy database: killed between two batches, or in the middle of one.
            first = await start(logs[0])
            await asyncio.sleep(4 + random.random())
            healthy_kill = datetime.now(UTC)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)

            # A hung database: the write waits out its bound, then the batches are spooled;
            # the process is killed long after the hang began.
            second = await start(logs[1])
            second_ready = datetime.now(UTC)
            await asyncio.sleep(3)
            paused = postgres_processes(data_dir)
            for pid in paused:
                os.kill(pid, signal.SIGSTOP)
            await asyncio.sleep(8)
            hung_kill = datetime.now(UTC)
            second.send_signal(signal.SIGKILL)
            second.wait(timeout=10)
            for pid in paused:
                os.kill(pid, signal.SIGCONT)
            paused = []

            # The next process replays what the killed one spooled.
            third = await start(logs[2])
            await asyncio.to_thread(
                wait_for,
                "the spool replayed",
                lambda: inspect_spool(data_dir / "spool", max_bytes=1).records_pending == 0,
                30,
                third,
                logs[2],
            )
        finally:
            for pid in paused:
                os.kill(pid, signal.SIGCONT)

    # What the hung process had spooled was there for the next one.
    opened = first_line(logs[2].read_text(), "spool opened")
    assert int(opened.split("samples_pending=")[1].split()[0]) > 0
    with EmbeddedPostgres(data_dir) as server:
        healthy = loss_windows(server.url, healthy_kill)
        hung = loss_windows(server.url, hung_kill)
        # Up to each kill, every probe kept its cadence: nothing older went missing.
        healthy_gaps = cadence_gaps(server.url, T0, healthy_kill - timedelta(seconds=3))
        hung_gaps = cadence_gaps(
            server.url,
            second_ready,
            hung_kill - timedelta(seconds=WRITE_TIMEOUT_S + BATCH_DELAY_S + 1),
        )
    assert len(healthy) == len(hung) == LINKS
    assert max(healthy.values()) < BATCH_DELAY_S + PROBE_INTERVAL_S + SLACK_S, healthy
    assert max(hung.values()) < WRITE_TIMEOUT_S + BATCH_DELAY_S + PROBE_INTERVAL_S + SLACK_S, hung
    assert healthy_gaps < PROBE_INTERVAL_S * 2
    assert hung_gaps < PROBE_INTERVAL_S * 2


# --- a database Linkwatch did not start is watched, never restarted ------------------------


async def test_a_configured_database_that_dies_is_reported_but_never_restarted(
    pg_data_dir: Path,
) -> None:
    server = EmbeddedPostgres(pg_data_dir)  # someone else's server, reached by its URL
    url = await asyncio.to_thread(server.start)
    db = await connect(StorageSettings(url=url, data_dir=pg_data_dir / "lw"))
    stop = asyncio.Event()
    watching = asyncio.create_task(
        db.watch(stop, every=timedelta(milliseconds=200), check_timeout=timedelta(seconds=2))
    )
    try:
        assert db.health().reachable
        os.kill(postgres_processes(pg_data_dir)[0], signal.SIGKILL)
        deadline = time.monotonic() + 15
        while db.health().reachable:
            assert time.monotonic() < deadline, "the outage was not noticed"
            await asyncio.sleep(0.1)
        await asyncio.sleep(4)  # many rounds of the watch
        health = db.health()
        assert not health.embedded
        assert health.restarts == 0
        assert health.next_restart_at is None
        assert not await asyncio.to_thread(server.is_running)

        await asyncio.to_thread(server.start)  # its owner brings it back
        deadline = time.monotonic() + 15
        while not db.health().reachable:
            assert time.monotonic() < deadline, "the database's return was not noticed"
            await asyncio.sleep(0.1)
        async with db.connection() as conn:  # the pool reconnected on its own
            await conn.execute("SELECT 1")
    finally:
        stop.set()
        await watching
        await db.close()
        await asyncio.to_thread(server.stop)
