"""Write-path throughput: samples per second from the probes' queue to committed rows,
against `psql \\copy` of the same rows into the same table (the practical ceiling), and
the writer's CPU share at the live rate of 10,000 links x 2 probes every 30 s.

Also the daemon's own path (the sample pipeline: each write a task under its deadline,
the spool behind it) and what writing every batch ahead to the spool would cost (append
and fsync before the write, release after the commit), which Linkwatch does not do: the
README's promise says what a killed process loses instead, and why.

    .venv/bin/python -m bench.write_path [--rows 300000] [--sustain-s 20] [--rounds 3]

Runs on its own embedded PostgreSQL in a temporary directory, so it measures both sides
against the same server, table and rows in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from collector import StorageSettings, connect
from collector.embedded import EmbeddedPostgres
from collector.pipeline import PipelineSettings, SamplePipeline
from collector.spool import Spool
from collector.writer import SampleWriter, write_samples
from kernel.domain import Outcome, Sample

LIVE_RATE = 10_000 * 2 / 30  # samples per second: 10,000 links x 2 probes every 30 s


def make_samples(count: int, seed: int = 7) -> list[Sample]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    links = 10_000
    samples = []
    for i in range(count):
        down = rng.random() < 0.01
        rtt = None if down else round(rng.uniform(0.2, 40), 3)
        samples.append(
            Sample(
                link_id=f"link-{i % links:05d}",
                probe_id="icmp" if (i // links) % 2 == 0 else "tcp",
                observed_at=start + timedelta(seconds=30 * (i // (2 * links)), microseconds=i),
                outcome=Outcome.DOWN if down else Outcome.UP,
                rtt_ms=rtt,
                rtt_min_ms=rtt,
                rtt_max_ms=rtt,
                jitter_ms=0.1 if rtt else None,
                loss_pct=100.0 if down else 0.0,
                error="no reply (5/5 lost)" if down else None,
            )
        )
    return samples


async def writer_rate(url: str, data_dir: Path, samples: list[Sample], batch: int) -> float:
    db = await connect(StorageSettings(url=url, data_dir=data_dir))
    try:
        async with db.connection() as conn:
            await conn.execute("TRUNCATE samples")
        queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=10_000)
        writer = SampleWriter.to_database(db, queue, batch_size=batch)
        began = time.perf_counter()
        task = asyncio.create_task(writer.run())
        for sample in samples:
            await queue.put(sample)
        await writer.stop()
        await task
        elapsed = time.perf_counter() - began
        assert writer.stored == len(samples), (writer.stored, len(samples))
        return len(samples) / elapsed
    finally:
        await db.close()


async def pipeline_rate(url: str, data_dir: Path, samples: list[Sample], batch: int) -> float:
    """The daemon's path: the writer's batches through the spooling sink, each write a
    task under its deadline."""
    db = await connect(StorageSettings(url=url, data_dir=data_dir))
    try:
        async with db.connection() as conn:
            await conn.execute("TRUNCATE samples")
        pipeline = await SamplePipeline.open(
            db, PipelineSettings(spool_dir=data_dir / "bench-spool", batch_size=batch)
        )
        began = time.perf_counter()
        task = asyncio.create_task(pipeline.run())
        for sample in samples:
            await pipeline.queue.put(sample)
        await pipeline.stop()
        await task
        elapsed = time.perf_counter() - began
        assert pipeline.stored == len(samples), (pipeline.stored, len(samples))
        assert pipeline.sink.spooled == 0
        return len(samples) / elapsed
    finally:
        await db.close()


async def write_ahead_rate(
    url: str, data_dir: Path, samples: list[Sample], batch: int, *, release: bool
) -> float:
    """Writing ahead: each batch appended to the spool (fsync'd) before its write and,
    with `release`, released after the commit. Releasing goes through `peek`, which reads
    the record back: with it the figure is an upper bound of the cost, without it (the
    append alone) a lower one."""
    db = await connect(StorageSettings(url=url, data_dir=data_dir))
    spool_dir = Path(tempfile.mkdtemp(prefix="bench-wal-", dir=data_dir))
    spool = await Spool.open(spool_dir, max_bytes=10**11)
    try:
        async with db.connection() as conn:
            await conn.execute("TRUNCATE samples")

        async def sink(batch_: Sequence[Sample]) -> int:
            await spool.append(batch_)
            stored = await write_samples(db, batch_)
            if release:
                item = await spool.peek()
                assert item is not None
                await spool.ack(item[0])
            return stored

        queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=10_000)
        writer = SampleWriter(sink, queue, batch_size=batch)
        began = time.perf_counter()
        task = asyncio.create_task(writer.run())
        for sample in samples:
            await queue.put(sample)
        await writer.stop()
        await task
        elapsed = time.perf_counter() - began
        assert writer.stored == len(samples), (writer.stored, len(samples))
        return len(samples) / elapsed
    finally:
        await spool.close()
        await db.close()
        shutil.rmtree(spool_dir, ignore_errors=True)


def psql_copy_rate(url: str, bindir: Path, samples: list[Sample], workdir: Path) -> float:
    path = workdir / "samples.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        for s in samples:
            out.writerow(
                [
                    s.link_id,
                    s.probe_id,
                    s.observed_at.isoformat(),
                    s.outcome.value,
                    s.rtt_ms,
                    s.rtt_min_ms,
                    s.rtt_max_ms,
                    s.jitter_ms,
                    s.loss_pct,
                    s.error,
                ]
            )
    path.chmod(0o644)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE samples")
    command = (
        "\\copy samples (link_id, probe_id, observed_at, outcome, rtt_ms, rtt_min_ms,"
        f" rtt_max_ms, jitter_ms, loss_pct, error) FROM '{path}' WITH (FORMAT csv)"
    )
    began = time.perf_counter()
    subprocess.run([str(bindir / "psql"), url, "-q", "-c", command], check=True)
    return len(samples) / (time.perf_counter() - began)


async def sustained_cpu(url: str, data_dir: Path, seconds: float) -> tuple[float, float]:
    """Feed the writer at the live rate; return (its CPU share of one core, lag p99 s)."""
    db = await connect(StorageSettings(url=url, data_dir=data_dir))
    try:
        queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=10_000)
        writer = SampleWriter.to_database(db, queue)
        task = asyncio.create_task(writer.run())
        samples = make_samples(int(LIVE_RATE * seconds), seed=11)
        cpu0, began = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        lags = []
        for i, sample in enumerate(samples):
            due = began + i / LIVE_RATE
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(max(0.0, time.perf_counter() - due))
            await queue.put(sample)
        await writer.stop()
        await task
        cpu1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - began
        used = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        lags.sort()
        return used / wall, lags[int(0.99 * (len(lags) - 1))]
    finally:
        await db.close()


async def migrate(url: str, data_dir: Path) -> None:
    db = await connect(StorageSettings(url=url, data_dir=data_dir))  # applies migrations
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--sustain-s", type=float, default=20.0)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of every measurement, anchor included; medians are shown (default 3)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="lw-bench-"))
    workdir.chmod(0o755)
    server = EmbeddedPostgres(workdir / "db")
    url = server.start()
    data_dir = workdir / "db"
    # Each round measures the anchor and every variant back to back, so that a busy
    # neighbour on a shared machine slows a round, not one side of a comparison.
    rates: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    try:
        asyncio.run(migrate(url, data_dir))
        samples = make_samples(args.rows)
        variants: list[tuple[str, Callable[[], Coroutine[Any, Any, float]]]] = [
            *(
                (
                    f"linkwatch writer, batch {batch:>5}",
                    partial(writer_rate, url, data_dir, samples, batch),
                )
                for batch in (500, 5000, 20000)
            ),
            (
                "pipeline (daemon), batch  5000",
                partial(pipeline_rate, url, data_dir, samples, 5000),
            ),
            (
                "writing ahead,     batch  5000",
                partial(write_ahead_rate, url, data_dir, samples, 5000, release=True),
            ),
            (
                "  its append alone, batch 5000",
                partial(write_ahead_rate, url, data_dir, samples, 5000, release=False),
            ),
        ]
        for _ in range(args.rounds):
            copy_rate = psql_copy_rate(url, server.binaries.bin_dir, samples, workdir)
            rates.setdefault("psql \\copy (anchor)", []).append(copy_rate)
            for name, measure in variants:
                rate = asyncio.run(measure())
                rates.setdefault(name, []).append(rate)
                ratios.setdefault(name, []).append(rate / copy_rate)
        cpu_share, lag_p99 = asyncio.run(sustained_cpu(url, data_dir, args.sustain_s))
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)

    print(
        f"rows: {args.rows:,} per run, same server, table and rows; cores: {os.cpu_count()}; "
        f"medians of {args.rounds} rounds (ratios within each round)"
    )
    for name, measured in rates.items():
        line = f"{name:<31}: {statistics.median(measured):>10,.0f} rows/s"
        if name in ratios:
            spread = ratios[name]
            line += (
                f"   ratio to \\copy: {statistics.median(spread):.2f}"
                f" ({min(spread):.2f}-{max(spread):.2f})"
            )
        print(line)
    print(
        f"live rate {LIVE_RATE:,.0f} samples/s (10,000 links x 2 probes / 30 s) for "
        f"{args.sustain_s:.0f} s: process CPU {cpu_share * 100:.1f} % of one core"
        f" (feeder included), feed lag p99 {lag_p99 * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
