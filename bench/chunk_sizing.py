"""Chunk sizing: index and heap bytes per stored sample in a TimescaleDB chunk, against
the figure `collector.chunking` sizes chunks with, and the intervals it then chooses.

    LINKWATCH_PG_BINDIR=/usr/lib/postgresql/15/bin .venv/bin/python -m bench.chunk_sizing \\
        [--links 1000] [--rounds 2880]

Writes `rounds` probe rounds of `links` links x 2 probes (one every 30 s, as live probes
do; 2880 rounds fill a day chunk) through the collector's writer into its own embedded
PostgreSQL with TimescaleDB, in a temporary directory, then reads the chunk's sizes.
The index bytes a sample costs grow with the rounds a chunk holds (each probe's entries
spread over more half-full primary-key pages), so the default measures a whole day.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector import StorageSettings, connect
from collector.chunking import SAMPLE_INDEX_BYTES, size_chunk_interval
from collector.embedded import EmbeddedPostgres
from collector.writer import write_samples
from kernel.domain import Outcome, Sample

LIVE_RATE = 10_000 * 2 / 30  # samples per second: 10,000 links x 2 probes every 30 s


def probe_round(links: int, at: datetime, rng: random.Random) -> list[Sample]:
    found = []
    for i in range(links):
        for probe in ("icmp", "tcp"):
            down = rng.random() < 0.01
            rtt = None if down else round(rng.uniform(0.2, 40), 3)
            found.append(
                Sample(
                    link_id=f"link-{i:05d}",
                    probe_id=probe,
                    observed_at=at + timedelta(milliseconds=rng.randrange(30_000)),
                    outcome=Outcome.DOWN if down else Outcome.UP,
                    rtt_ms=rtt,
                    rtt_min_ms=rtt,
                    rtt_max_ms=rtt,
                    jitter_ms=0.1 if rtt else None,
                    loss_pct=100.0 if down else 0.0,
                    error="no reply (5/5 lost)" if down else None,
                )
            )
    return found


async def measure(url: str, data_dir: Path, links: int, rounds: int) -> dict[str, float]:
    db = await connect(
        StorageSettings(
            url=url, data_dir=data_dir, timescaledb="require", chunk_interval=timedelta(days=1)
        )
    )
    try:
        rng = random.Random(7)
        start = datetime(2026, 11, 2, tzinfo=UTC)  # one day chunk holds every round
        for r in range(rounds):
            await write_samples(db, probe_round(links, start + timedelta(seconds=30 * r), rng))
        async with db.connection() as conn:
            await conn.execute("VACUUM ANALYZE samples")
            cur = await conn.execute(
                "SELECT count(*), sum(d.table_bytes + d.toast_bytes), sum(d.index_bytes)"
                " FROM chunks_detailed_size('samples') d"
            )
            chunks, heap, index = await cur.fetchone() or (0, 0, 0)
            cur = await conn.execute("SELECT count(*) FROM samples")
            (rows,) = await cur.fetchone() or (0,)
            cur = await conn.execute("SELECT pg_size_bytes(current_setting('shared_buffers'))")
            (shared_buffers,) = await cur.fetchone() or (0,)
    finally:
        await db.close()
    assert chunks == 1, chunks
    return {
        "rows": rows,
        "heap": heap / rows,
        "index": index / rows,
        "shared_buffers": shared_buffers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=2_880)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="lw-bench-"))
    workdir.chmod(0o755)
    server = EmbeddedPostgres(workdir / "db", durable=False)
    if not server.binaries.timescaledb:
        raise SystemExit(
            f"no timescaledb extension for the PostgreSQL in {server.binaries.bin_dir}; "
            "point LINKWATCH_PG_BINDIR at one that has it"
        )
    url = server.start()
    try:
        found = asyncio.run(measure(url, workdir / "db", args.links, args.rounds))
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)

    print(
        f"{found['rows']:,.0f} samples ({args.links:,} links x 2 probes x {args.rounds} rounds"
        " every 30 s) in one chunk"
    )
    print(
        f"index bytes per sample: {found['index']:.1f} measured,"
        f" {SAMPLE_INDEX_BYTES} assumed by collector.chunking"
        f" (ratio {found['index'] / SAMPLE_INDEX_BYTES:.2f})"
    )
    print(f"heap bytes per sample:  {found['heap']:.1f}")
    print("chunk interval chosen at 10,000 links x 2 probes / 30 s:")
    for label, shared_buffers in (
        ("this server", int(found["shared_buffers"])),
        ("1 GiB", 2**30),
        ("4 GiB", 4 * 2**30),
        ("16 GiB", 16 * 2**30),
    ):
        sizing = size_chunk_interval(
            configured=None, samples_per_s=LIVE_RATE, shared_buffers_bytes=shared_buffers
        )
        print(f"  shared_buffers {label:>11}: {sizing.describe()}")


if __name__ == "__main__":
    main()
