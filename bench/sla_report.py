"""SLA report throughput: one week of 10,000 weekly contracts (one link each) from stored
state intervals, against a naive SQL aggregate over the raw samples of the same week
(down samples x interval per link), the anchor: what "just ask the database" costs.

    .venv/bin/python bench/sla_report.py [--links 10000] [--days 7] [--interval-s 30]

Runs on its own embedded PostgreSQL (fsync off: the data is thrown away) in a temporary
directory. Samples are generated inside the server (`generate_series`, in link order, on
every core), with realistic trouble from a fixed hash of link and time: outages of a
minute to a few hours on about one link-day in eight, single lost samples that never
confirm, and monitor gaps with no samples at all. State intervals are then derived with
the collector's own `StateDeriver.catch_up()` (timed on its own), and the report is timed
as `linkwatch report sla` runs it: `contract_windows` plus the billing records.

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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from psycopg.rows import tuple_row

from collector import Database, StorageSettings, connect
from collector.deriver import StateDeriver
from collector.embedded import EmbeddedPostgres
from collector.stored import upsert_maintenance
from kernel.config import Config
from sla.records import record
from sla.report import contract_windows
from sla.windows import parse_window

T = TypeVar("T")

LABEL = "2026-W47"
ZONE = "Europe/Berlin"
LINKS_PER_CUSTOMER = 100
LINKS_PER_STATEMENT = 100  # ~2 M rows per INSERT at full size: long statements, few

# One INSERT per slice of links. Everything about a sample follows from a hash of its
# link and day (outage, gap) or of its link and index (a lone lost sample), so the data
# is the same on every run and needs no Python in the loop. Rows come in primary-key
# order, so the index grows at its right edge.
GENERATE = """
INSERT INTO samples (link_id, probe_id, observed_at, outcome, rtt_ms, loss_pct, error)
SELECT 'link-' || lpad(g.i::text, 5, '0'),
       'icmp',
       %(start)s::timestamptz + make_interval(secs => g.k * %(interval_s)s),
       CASE WHEN g.down THEN 'down' ELSE 'up' END,
       CASE WHEN g.down THEN NULL ELSE 2 + (g.hk & 1023) / 64.0 END,
       CASE WHEN g.down THEN 100 ELSE 0 END,
       CASE WHEN g.down THEN 'no reply (5/5 lost)' END
FROM (
    SELECT i, k, hk,
           -- an outage: about one link-day in eight, from 2 samples to 129
           ((hd & 7) = 0 AND sod >= (hd >> 3 & 4095) %% per_day
                         AND sod <  (hd >> 3 & 4095) %% per_day + 2 + (hd >> 15 & 127))
           -- a lone lost sample: one in 512, never confirmed, so it counts as up
           OR (hk & 511) = 0 AS down,
           -- a monitor gap: about one link-day in 64, 10 to 73 samples with no data
           ((hd >> 24 & 63) = 1 AND sod >= (hd >> 3 & 4095) %% per_day + 600
                                AND sod <  (hd >> 3 & 4095) %% per_day + 610
                                           + (hd >> 15 & 63)) AS gap
    FROM (
        SELECT i, k, per_day, k %% per_day AS sod,
               hashint8(i::bigint * 1000 + k / per_day) AS hd,
               hashint8(i::bigint * 100000000 + k) AS hk
        FROM generate_series(%(first)s::int, %(last)s::int) AS i,
             generate_series(0, %(samples)s::int - 1) AS k,
             (SELECT (86400 / %(interval_s)s)::int AS per_day) AS d
    ) AS h
) AS g
WHERE NOT g.gap
ORDER BY g.i, g.k
"""

# The anchor: availability per link straight from the raw samples, as anyone would
# write it first. It ignores confirmation, staleness and maintenance.
NAIVE = """
SELECT link_id,
       1 - count(*) FILTER (WHERE outcome = 'down') * %(interval_s)s::numeric
           / %(window_s)s::numeric AS availability
FROM samples
WHERE observed_at >= %(start)s AND observed_at < %(end)s
GROUP BY link_id
"""


def bench_config(links: int, interval_s: int, data_dir: Path, url: str) -> Config:
    customers = (links + LINKS_PER_CUSTOMER - 1) // LINKS_PER_CUSTOMER
    return Config.model_validate(
        {
            "data_dir": data_dir,
            "database": {"url": url, "pool_max_size": 4},
            "customers": [
                {"id": f"cust-{c:03d}", "name": f"Customer {c}", "timezone": ZONE}
                for c in range(customers)
            ],
            "links": [
                {
                    "id": f"link-{i:05d}",
                    "customer": f"cust-{i // LINKS_PER_CUSTOMER:03d}",
                    "probes": [
                        {
                            "id": "icmp",
                            "kind": "icmp",
                            "host": "127.0.0.1",
                            "interval": f"{interval_s}s",
                        }
                    ],
                }
                for i in range(links)
            ],
            "plans": [
                {
                    "id": "business",
                    "target": "99.5",
                    "window": "week",
                    "currency": "EUR",
                    "credit": {"step": "0.5", "per_step": "5", "cap": "50"},
                }
            ],
            "contracts": [
                {
                    "id": f"contract-{i:05d}",
                    "customer": f"cust-{i // LINKS_PER_CUSTOMER:03d}",
                    "links": [f"link-{i:05d}"],
                    "plan": "business",
                    "fee": "250.00",
                }
                for i in range(links)
            ],
            # Planned work for every tenth customer; every other one announced too late.
            "maintenance": [
                {
                    "id": f"mw-{c:03d}",
                    "customers": [f"cust-{c:03d}"],
                    "start": "2026-11-19T02:00:00+01:00",
                    "end": "2026-11-19T04:00:00+01:00",
                    "announced_at": "2026-11-10T09:00:00+01:00"
                    if c % 20 == 0
                    else "2026-11-18T09:00:00+01:00",
                }
                for c in range(0, customers, 10)
            ],
        }
    )


async def generate(url: str, data_dir: Path, args: argparse.Namespace, start: datetime) -> int:
    samples = args.days * 86400 // args.interval_s
    slices = [
        (first, min(first + LINKS_PER_STATEMENT, args.links) - 1)
        for first in range(0, args.links, LINKS_PER_STATEMENT)
    ]
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for piece in slices:
        queue.put_nowait(piece)
    db = await connect(StorageSettings(url=url, data_dir=data_dir, pool_max_size=4))

    async def worker() -> None:
        while not queue.empty():
            first, last = queue.get_nowait()
            async with db.connection() as conn:
                await conn.execute(
                    GENERATE,
                    {
                        "start": start,
                        "interval_s": args.interval_s,
                        "first": first,
                        "last": last,
                        "samples": samples,
                    },
                )

    try:
        async with asyncio.TaskGroup() as group:
            for n in range(os.cpu_count() or 2):
                group.create_task(worker(), name=f"generate-{n}")
        async with db.connection() as conn:
            await conn.execute("VACUUM ANALYZE samples")
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute("SELECT count(*) FROM samples")
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])
    finally:
        await db.close()


async def timed(runs: int, work: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    """The median wall time of `runs` runs, and the last run's result."""
    times: list[float] = []
    result: T | None = None
    for _ in range(runs):
        began = time.perf_counter()
        result = await work()
        times.append(time.perf_counter() - began)
    assert result is not None
    return statistics.median(times), result


async def measure(
    url: str, data_dir: Path, args: argparse.Namespace, config: Config
) -> dict[str, Any]:
    window = parse_window(LABEL, ZoneInfo(ZONE))
    start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
    now = end + timedelta(days=3)  # closed: past the window and its grace
    db = await connect(StorageSettings(url=url, data_dir=data_dir, pool_max_size=4))
    try:
        await upsert_maintenance(db, [m.to_window() for m in config.maintenance], source="config")
        began = time.perf_counter()
        probes = await StateDeriver(db, config.links).catch_up()
        derive_s = time.perf_counter() - began
        rows = await _count(db, "SELECT count(*) FROM link_states")

        async def report() -> list[dict[str, Any]]:
            items = await contract_windows(db, config, LABEL, now)
            return [record(item, now) for item in items]

        async def naive() -> dict[str, Decimal]:
            async with db.connection() as conn:
                cur = conn.cursor(row_factory=tuple_row)
                await cur.execute(
                    NAIVE,
                    {
                        "start": start,
                        "end": end,
                        "interval_s": args.interval_s,
                        "window_s": int(window.length.total_seconds()),
                    },
                )
                return {link: value for link, value in await cur.fetchall()}

        report_s, records = await timed(args.runs, report)
        naive_s, anchor = await timed(args.runs, naive)
    finally:
        await db.close()
    ours = {
        r["link"]: Decimal(r["availability_pct"]) / 100
        for r in records
        if r["availability_pct"] is not None
    }
    return {
        "derive_s": derive_s,
        "probes": probes,
        "link_rows": rows,
        "report_s": report_s,
        "naive_s": naive_s,
        "records": records,
        "ours_mean": statistics.fmean(float(v) for v in ours.values()),
        "naive_mean": statistics.fmean(float(v) for v in anchor.values()),
        "missed": sum(1 for r in records if r["met"] is False),
        "credits": sum((Decimal(r["credit_amount"]) for r in records), Decimal(0)),
    }


async def _count(db: Database, sql: str) -> int:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(sql)
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=10_000, help="links = contracts")
    parser.add_argument("--days", type=int, default=7, help="of samples (the week is 7)")
    parser.add_argument("--interval-s", type=int, default=30, help="between samples")
    parser.add_argument("--runs", type=int, default=3, help="report and anchor runs (median)")
    args = parser.parse_args()
    if not 1 <= args.links <= 99_999 or 86400 % args.interval_s:
        parser.error("--links must be 1 to 99999 and --interval-s divide a day")

    workdir = Path(tempfile.mkdtemp(prefix="lw-bench-sla-"))
    workdir.chmod(0o755)
    server = EmbeddedPostgres(workdir / "db", durable=False)
    url = server.start()
    try:
        config = bench_config(args.links, args.interval_s, workdir / "db", url)
        start = parse_window(LABEL, ZoneInfo(ZONE)).start.astimezone(UTC)
        began = time.perf_counter()
        count = asyncio.run(generate(url, workdir / "db", args, start))
        generate_s = time.perf_counter() - began
        figures = asyncio.run(measure(url, workdir / "db", args, config))
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)

    report_s, naive_s = figures["report_s"], figures["naive_s"]
    print(
        f"{args.links:,} links x {args.days} days of {args.interval_s} s samples ="
        f" {count:,} samples (generated in {generate_s:.0f} s); cores: {os.cpu_count()};"
        f" PostgreSQL {server.binaries.major}, embedded, fsync off"
    )
    print(
        f"state derivation (StateDeriver.catch_up, {figures['probes']:,} probes):"
        f" {figures['derive_s']:,.1f} s = {count / figures['derive_s']:,.0f} samples/s"
        f" -> {figures['link_rows']:,} link intervals"
    )
    print(
        f"naive SQL over raw samples (anchor):  {naive_s:8.2f} s"
        f"   mean availability {figures['naive_mean'] * 100:.4f} %"
    )
    print(
        f"SLA report {LABEL}, {len(figures['records']):,} contracts: {report_s:8.2f} s"
        f"   mean availability {figures['ours_mean'] * 100:.4f} %"
        f"   ratio to anchor: {report_s / naive_s:.2f}"
        f"   (target < 10 s: {'met' if report_s < 10 else 'MISSED'})"
    )
    print(
        f"  {figures['missed']:,} contracts missed the 99.5 % target;"
        f" credits {figures['credits']:,} EUR (median of {args.runs} runs each)"
    )


if __name__ == "__main__":
    main()
