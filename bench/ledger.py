"""Ledger upkeep at scale: the rows of every window since monitoring began (the backfill,
in slices) and the running windows' refresh once per evaluation period, for 10,000
contracts over 13 months of history, against the one-transaction refresh of the whole
history that `linkwatch credits refresh` runs (the anchor: the same rows, computed by the
same engine, but all under one lock and without a pause for the event loop).

    .venv/bin/python -m bench.ledger [--contracts 10000] [--months 13] [--slice 200]

Runs on its own embedded PostgreSQL (fsync off: the data is thrown away) in a temporary
directory. Link state intervals are generated inside the server, per link and day, with
an outage of 2 to 129 minutes on about one link-day in eight (a fixed hash, so every run
sees the same data); half the contracts are weekly, half monthly, over four time zones.
While each part runs, a ticker task measures how late the event loop lets it run: that
is what probes and page requests would wait.

It measures; it never touches a database other than the one it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from psycopg.rows import tuple_row

from collector import Database, StorageSettings, connect
from collector.embedded import EmbeddedPostgres
from kernel.config import Config
from sla.backfill import Backfill
from sla.ledger import TimeRange, refresh_ledger, refresh_running

T = TypeVar("T")

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")
LINKS_PER_CUSTOMER = 100
LINKS_PER_STATEMENT = 250

# One row a day per link, split around an outage on about one link-day in eight.
GENERATE = """
INSERT INTO link_states (link_id, status, starts_at, ends_at)
SELECT 'link-' || lpad(d.i::text, 5, '0'), p.status, p.starts_at, p.ends_at
FROM (
    SELECT i, day, hashint8(i::bigint * 100000 + day) AS h,
           %(start)s::timestamptz + make_interval(days => day) AS day_start
    FROM generate_series(%(first)s::int, %(last)s::int) AS i,
         generate_series(0, %(days)s::int - 1) AS day
) AS d
CROSS JOIN LATERAL (
    SELECT d.day_start + make_interval(mins => ((d.h >> 10) & 1023)::int) AS o_start,
           d.day_start + make_interval(mins => ((d.h >> 10) & 1023)::int + 2
                                              + ((d.h >> 3) & 127)::int) AS o_end
) AS o
CROSS JOIN LATERAL (
    SELECT 'up' AS status, d.day_start AS starts_at, d.day_start + interval '1 day' AS ends_at
    WHERE (d.h & 7) <> 0
    UNION ALL
    SELECT * FROM (VALUES ('up', d.day_start, o.o_start), ('down', o.o_start, o.o_end),
                          ('up', o.o_end, d.day_start + interval '1 day')) AS v (s, a, b)
    WHERE (d.h & 7) = 0 AND v.a < v.b
) AS p
"""


def bench_config(contracts: int, data_dir: Path, url: str) -> Config:
    customers = (contracts + LINKS_PER_CUSTOMER - 1) // LINKS_PER_CUSTOMER
    return Config.model_validate(
        {
            "data_dir": data_dir,
            "database": {"url": url, "pool_max_size": 4},
            "customers": [
                {"id": f"cust-{c:03d}", "name": f"Customer {c}", "timezone": ZONES[c % 4]}
                for c in range(customers)
            ],
            "links": [
                {
                    "id": f"link-{i:05d}",
                    "customer": f"cust-{i // LINKS_PER_CUSTOMER:03d}",
                    "probes": [{"id": "icmp", "kind": "icmp", "host": "127.0.0.1"}],
                }
                for i in range(contracts)
            ],
            "plans": [
                {
                    "id": kind,
                    "target": "99.5",
                    "window": kind,
                    "currency": "EUR",
                    "credit": {"step": "0.5", "per_step": "5", "cap": "50"},
                }
                for kind in ("week", "month")
            ],
            "contracts": [
                {
                    "id": f"contract-{i:05d}",
                    "customer": f"cust-{i // LINKS_PER_CUSTOMER:03d}",
                    "links": [f"link-{i:05d}"],
                    "plan": "week" if i % 2 == 0 else "month",
                    "fee": "250.00",
                }
                for i in range(contracts)
            ],
        }
    )


async def generate(db: Database, contracts: int, start: datetime, days: int) -> int:
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for first in range(0, contracts, LINKS_PER_STATEMENT):
        queue.put_nowait((first, min(first + LINKS_PER_STATEMENT, contracts) - 1))

    async def worker() -> None:
        while not queue.empty():
            first, last = queue.get_nowait()
            async with db.connection() as conn:
                await conn.execute(
                    GENERATE, {"start": start, "first": first, "last": last, "days": days}
                )

    async with asyncio.TaskGroup() as group:
        for n in range(os.cpu_count() or 2):
            group.create_task(worker(), name=f"generate-{n}")
    async with db.connection() as conn:
        await conn.execute("VACUUM ANALYZE link_states")
    return await _count(db, "SELECT count(*) FROM link_states")


@dataclass
class Stalls:
    """How late a 10 ms ticker ran while something else used the event loop."""

    lateness: list[float]

    @property
    def worst_ms(self) -> float:
        return max(self.lateness, default=0.0) * 1000

    @property
    def p99_ms(self) -> float:
        if len(self.lateness) < 2:
            return self.worst_ms
        return statistics.quantiles(self.lateness, n=100)[98] * 1000


async def watched(work: Callable[[], Awaitable[T]]) -> tuple[float, Stalls, T]:
    """Wall time of `work()`, and the event loop's stalls meanwhile."""
    lateness: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            lateness.append(max(loop.time() - due, 0.0))

    ticker = asyncio.create_task(tick(), name="ticker")
    began = time.perf_counter()
    try:
        result = await work()
    finally:
        done.set()
        await ticker
    return time.perf_counter() - began, Stalls(lateness), result


async def measure(db: Database, config: Config, first: datetime, slice_: int) -> list[str]:
    lines = []
    steps: list[float] = []

    async def backfill() -> int:
        filler = Backfill(db, config, slice_contracts=slice_)
        while True:
            began = time.perf_counter()
            more = await filler.step(NOW)
            steps.append(time.perf_counter() - began)
            if not more:
                return filler.created

    wall, stalls, created = await watched(backfill)
    lines.append(
        f"backfill ({slice_} contracts a slice): {created:,} rows in {wall:,.1f} s"
        f" = {created / wall:,.0f} rows/s; {len(steps):,} steps, longest {max(steps):.2f} s"
        f" (median {statistics.median(steps) * 1000:.0f} ms); event loop late by at most"
        f" {stalls.worst_ms:.0f} ms (p99 {stalls.p99_ms:.0f} ms)"
    )
    passes = []
    for n in range(3):
        later = NOW + timedelta(minutes=n + 1)
        passes.append(await watched(lambda at=later: refresh_running(db, config, at)))
    wall = statistics.median(p[0] for p in passes)
    worst = max(p[1].worst_ms for p in passes)
    lines.append(
        f"running windows refreshed (one evaluation period's pass): {wall:.2f} s median of 3;"
        f" {passes[-1][2].recomputed:,} rows recomputed; event loop late by at most"
        f" {worst:.0f} ms"
    )

    async with db.connection() as conn:
        await conn.execute("TRUNCATE ledger_audit, ledger")
    wall, stalls, anchor = await watched(
        lambda: refresh_ledger(db, config, TimeRange(first, NOW), NOW)
    )
    lines.append(
        f"anchor, one transaction over the whole history (credits refresh): {anchor.created:,}"
        f" rows in {wall:,.1f} s = {anchor.created / wall:,.0f} rows/s, the ledger locked"
        f" throughout; event loop late by at most {stalls.worst_ms:.0f} ms"
    )
    return lines


async def _count(db: Database, sql: str) -> int:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(sql)
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def run(url: str, data_dir: Path, args: argparse.Namespace) -> list[str]:
    config = bench_config(args.contracts, data_dir, url)
    days = round(args.months * 365.25 / 12)
    first = (NOW - timedelta(days=days)).replace(hour=0, minute=0)
    db = await connect(StorageSettings(url=url, data_dir=data_dir, pool_max_size=4))
    try:
        began = time.perf_counter()
        rows = await generate(db, args.contracts, first, days)
        lines = [
            f"{args.contracts:,} contracts (half weekly, half monthly, 4 zones) x {days} days:"
            f" {rows:,} link state intervals (generated in {time.perf_counter() - began:.0f} s);"
            f" cores: {os.cpu_count()}; embedded PostgreSQL, fsync off"
        ]
        return lines + await measure(db, config, first, args.slice)
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=10_000, help="one link each")
    parser.add_argument("--months", type=int, default=13, help="of history")
    parser.add_argument("--slice", type=int, default=200, help="contracts per backfill step")
    args = parser.parse_args()
    if not 1 <= args.contracts <= 99_999 or not 1 <= args.months <= 36:
        parser.error("--contracts must be 1 to 99999 and --months 1 to 36")
    workdir = Path(tempfile.mkdtemp(prefix="lw-bench-ledger-"))
    workdir.chmod(0o755)
    server = EmbeddedPostgres(workdir / "db", durable=False)
    url = server.start()
    try:
        lines = asyncio.run(run(url, workdir / "db", args))
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
