"""Portal under load: the customer link page and the NOC dashboard at 50 concurrent
clients, with 10,000 links and 13 months of history in the database, measured with wrk
(Debian's package) against a real `linkwatch run --role portal` process.

    .venv/bin/python -m bench.portal [--links 10000] [--months 13] [--seconds 40]

Each page is measured for longer than the staff board's rebuild period (30 s, the
portal's refresh), so every run includes the moments its views are rebuilt, the p99's
worst case, and not only the time between them.

The anchor is the same process's /healthz: what aiohttp itself costs per request on this
machine, so the ratio says how much of the ceiling a page keeps.

The data set is made inside PostgreSQL (`generate_series`, deterministic hashes), once,
in --data-dir, and reused while the parameters are the same: link and probe state
intervals for the whole history (an outage of 2 to 90 minutes on about one link-day in
eight), hourly and daily rollups for the whole history, raw samples (every 30 s) for the
last two hours, and the credit ledger recomputed for every weekly window by the SLA engine
itself. Raw samples are not generated for 13 months (10,000 links x 30 s is 11 billion
rows): the pages read intervals and rollups for history, raw samples only for the
current state.

It measures; it never touches a database other than the one it starts, and serves on
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import yaml
from argon2 import PasswordHasher

from collector import connect
from collector.embedded import EmbeddedPostgres
from kernel.config import load_config
from linkwatch.daemon import storage_settings
from sla.ledger import TimeRange, refresh_ledger

LINKS_PER_CUSTOMER = 10
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway account of a throwaway database
PORT = 18090

STATES = """
WITH outages AS (
    SELECT 'c' || lpad((i / %(per_customer)s)::text, 4, '0') || '-l' || (i %% %(per_customer)s)
               AS link_id,
           day + make_interval(secs => (h >> 4 & 65535) %% 82800) AS starts_at,
           make_interval(mins => 2 + (h >> 20 & 127) %% 89) AS length
    FROM generate_series(%(first)s::int, %(last)s::int) AS i,
         generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 day',
                         interval '1 day') AS day,
         LATERAL (SELECT hashint8(i::bigint * 100000 + extract(epoch FROM day)::bigint / 86400)
                  AS h) AS hh
    WHERE (h & 7) = 0
), spans AS (
    SELECT link_id, starts_at, starts_at + length AS ends_at,
           lag(starts_at + length) OVER w AS previous_end,
           row_number() OVER w AS n
    FROM outages
    WINDOW w AS (PARTITION BY link_id ORDER BY starts_at)
), rows AS (
    SELECT link_id, 'down' AS status, starts_at, ends_at FROM spans
    UNION ALL
    SELECT link_id, 'up', coalesce(previous_end, %(start)s::timestamptz), starts_at
    FROM spans
    UNION ALL
    SELECT link_id, 'up', max(ends_at), NULL FROM spans GROUP BY link_id
)
INSERT INTO {table}
SELECT link_id, {probe} status, starts_at, ends_at {error} FROM rows
"""

ROLLUPS = """
INSERT INTO rollups
SELECT %(bucket)s,
       'c' || lpad((i / %(per_customer)s)::text, 4, '0') || '-l' || (i %% %(per_customer)s),
       'icmp', t, %(samples)s, 0, 0, 0,
       4 + (hashint8(i::bigint * 7 + extract(epoch FROM t)::bigint) & 1023) / 256.0,
       9 + (hashint8(i::bigint * 7 + extract(epoch FROM t)::bigint) & 1023) / 128.0,
       0, 0.3
FROM generate_series(%(first)s::int, %(last)s::int) AS i,
     generate_series(%(start)s::timestamptz, %(end)s::timestamptz - %(width)s::interval,
                     %(width)s::interval) AS t
"""

SAMPLES = """
INSERT INTO samples (link_id, probe_id, observed_at, outcome, rtt_ms, loss_pct)
SELECT 'c' || lpad((i / %(per_customer)s)::text, 4, '0') || '-l' || (i %% %(per_customer)s),
       'icmp', t, 'up',
       4 + (hashint8(i::bigint + extract(epoch FROM t)::bigint) & 1023) / 256.0, 0
FROM generate_series(%(first)s::int, %(last)s::int) AS i,
     generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '30 seconds') AS t
"""


def config_text(links: int, data_dir: Path, password_hash: str, url: str | None = None) -> str:
    customers = (links + LINKS_PER_CUSTOMER - 1) // LINKS_PER_CUSTOMER
    data: dict[str, Any] = {
        "data_dir": str(data_dir),
        **({"database": {"url": url}} if url else {}),
        "portal": {"listen": f"127.0.0.1:{PORT}", "secret_key": "b" * 40},
        "customers": [
            {"id": f"c{c:04d}", "name": f"Customer {c}", "timezone": "Europe/Berlin"}
            for c in range(customers)
        ],
        "links": [
            {
                "id": f"c{i // LINKS_PER_CUSTOMER:04d}-l{i % LINKS_PER_CUSTOMER}",
                "customer": f"c{i // LINKS_PER_CUSTOMER:04d}",
                "description": f"Access link {i}",
                "probes": [{"id": "icmp", "kind": "icmp", "host": "127.0.0.1", "interval": "30s"}],
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
            },
        ],
        "contracts": [
            {
                "id": f"k{i:05d}",
                "customer": f"c{i // LINKS_PER_CUSTOMER:04d}",
                "links": [f"c{i // LINKS_PER_CUSTOMER:04d}-l{i % LINKS_PER_CUSTOMER}"],
                "plan": "business",
                "fee": "250.00",
            }
            for i in range(links)
        ],
        "users": [
            {
                "name": "cust",
                "role": "customer",
                "customer": "c0000",
                "password_hash": password_hash,
            },
            {"name": "noc", "role": "ops", "password_hash": password_hash},
        ],
    }
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)


async def build(config_path: Path, links: int, months: int, now: datetime) -> None:
    config = load_config(config_path)
    start = (now - timedelta(days=round(months * 30.4))).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    raw_from = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    db = await connect(storage_settings(config))
    slices = [(f, min(f + 500, links) - 1) for f in range(0, links, 500)]
    base = {"per_customer": LINKS_PER_CUSTOMER, "start": start}
    try:

        async def run(statement: str, params: dict[str, Any]) -> None:
            async with db.connection() as conn:
                await conn.execute(statement.encode(), params)  # type: ignore[arg-type]

        async def each_slice(statement: str, params: dict[str, Any]) -> None:
            queue = list(slices)

            async def worker() -> None:
                while queue:
                    first, last = queue.pop()
                    await run(statement, {**base, **params, "first": first, "last": last})

            async with asyncio.TaskGroup() as group:
                for n in range(2):
                    group.create_task(worker(), name=f"generate-{n}")

        began = time.perf_counter()
        links_sql = STATES.format(table="link_states", probe="", error="")
        probes_sql = STATES.format(
            table="probe_states",
            probe="'icmp',",
            error=", CASE WHEN status = 'down' THEN 'no reply (5/5 lost)' END",
        )
        day_end = raw_from.replace(hour=0)
        steps: list[tuple[str, str, dict[str, Any]]] = [
            ("link states", links_sql, {"end": raw_from}),
            ("probe states", probes_sql, {"end": raw_from}),
            ("hourly rollups", ROLLUPS,
             {"bucket": "hour", "width": "1 hour", "samples": 120, "end": raw_from}),
            ("daily rollups", ROLLUPS,
             {"bucket": "day", "width": "1 day", "samples": 2880, "end": day_end}),
            ("raw samples", SAMPLES, {"start": raw_from, "end": now}),
        ]  # fmt: skip
        for name, statement, params in steps:
            step_began = time.perf_counter()
            await each_slice(statement, params)
            print(f"  {name}: {time.perf_counter() - step_began:.0f} s", flush=True)
        await run(
            "INSERT INTO rollup_watermarks VALUES ('hour', %(h)s, %(h)s), ('day', %(d)s, %(d)s)",
            {"h": raw_from, "d": day_end},
        )
        await run(
            "INSERT INTO state_progress SELECT link_id, 'icmp', %(now)s FROM link_states "
            "WHERE ends_at IS NULL",
            {"now": now},
        )
        for table in ("link_states", "probe_states", "rollups", "samples"):
            await run(f"VACUUM ANALYZE {table}", {})
        print(f"  data generated in {time.perf_counter() - began:.0f} s", flush=True)
        began = time.perf_counter()
        await refresh_ledger(db, config, TimeRange(start, now), now)
        print(f"  ledger computed in {time.perf_counter() - began:.0f} s", flush=True)
    finally:
        await db.close()


async def feed(url: str, links: int, stop: threading.Event) -> None:
    """What the collector does meanwhile: every link's probe reports every 30 s (raw
    samples from the last one stored up to now, so a data set built hours ago is current
    again first). Without it every link would soon read unknown: its samples stopped."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT max(observed_at) FROM samples")
        row = await cur.fetchone()
        start = (row[0] if row and row[0] else datetime.now(UTC)) + timedelta(seconds=30)
        while not stop.is_set():
            now = datetime.now(UTC)
            if start <= now:
                await conn.execute(
                    SAMPLES.encode(),  # type: ignore[arg-type]
                    {
                        "per_customer": LINKS_PER_CUSTOMER,
                        "first": 0,
                        "last": links - 1,
                        "start": start,
                        "end": now,
                    },
                )
                while start <= now:
                    start += timedelta(seconds=30)
            await asyncio.sleep(1)


async def sign_in(base: str, user: str) -> str:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(f"{base}/login") as response:
            page = await response.text()
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert match
        data = {"csrf_token": match.group(1), "username": user, "password": PASSWORD}
        async with session.post(f"{base}/login", data=data, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
            return str(response.cookies["linkwatch_session"].value)


def wrk(url: str, cookie: str | None, seconds: int, connections: int) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if cookie:
        command += ["-H", f"Cookie: linkwatch_session={cookie}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Latency Distribution" not in out:
        raise RuntimeError(f"wrk printed no latency distribution for {url}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    percentiles = {
        p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, flags=re.M)
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rate": rate,
        "p50_ms": percentiles["50"],
        "p99_ms": percentiles["99"],
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--links", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=13)
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("/var/tmp/linkwatch-bench-portal"),  # noqa: S108 - kept between runs
        help="where the data set is built and kept between runs",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("needs wrk (apt-get install wrk)")

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    marker = args.data_dir / "dataset.json"
    wanted = {"links": args.links, "months": args.months}
    config_path = args.data_dir / "linkwatch.yaml"
    if not marker.exists() or json.loads(marker.read_text()) != wanted:
        shutil.rmtree(args.data_dir, ignore_errors=True)
        args.data_dir.mkdir(parents=True)
        args.data_dir.chmod(0o711)  # the embedded server may run as another user
        config_path.write_text(
            config_text(args.links, args.data_dir, PasswordHasher().hash(PASSWORD))
        )
        print(
            f"building {args.links:,} links x {args.months} months in {args.data_dir}", flush=True
        )
        asyncio.run(build(config_path, args.links, args.months, now))
        marker.write_text(json.dumps(wanted))
    digest = hashlib.sha256(config_path.read_bytes()).hexdigest()[:8]
    print(f"cores: {os.cpu_count()}; data set {args.data_dir} (config {digest})", flush=True)

    # The bench runs the database (as the portal would find it in production) and feeds
    # it samples while the portal serves; the portal reaches it by URL.
    server = EmbeddedPostgres(args.data_dir)
    url = server.start()
    portal_path = args.data_dir / "portal.yaml"
    hashed = PasswordHasher().hash(PASSWORD)
    portal_path.write_text(config_text(args.links, args.data_dir, hashed, url))
    stop = threading.Event()
    feeder = threading.Thread(target=lambda: asyncio.run(feed(url, args.links, stop)))
    feeder.start()
    log = args.data_dir / "portal.log"
    with log.open("wb") as out:
        portal = subprocess.Popen(
            [sys.executable, "-m", "linkwatch", "--log-level", "warning", "run", "--role",
             "portal", "--config", str(portal_path)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{PORT}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if portal.poll() is not None:
                sys.exit(f"the portal exited; see {log}")
            try:
                done = subprocess.run(["wrk", "-t1", "-c1", "-d1s", f"{base}/healthz"],
                                      capture_output=True, check=False)  # fmt: skip
                if b"Requests/sec" in done.stdout and b"Socket errors" not in done.stdout:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"the portal did not start; see {log}")
            time.sleep(1)
        customer = asyncio.run(sign_in(base, "cust"))
        ops = asyncio.run(sign_in(base, "noc"))
        runs = [
            ("/healthz (anchor)", f"{base}/healthz", None),
            ("customer link page", f"{base}/links/c0000-l3", customer),
            ("NOC dashboard", f"{base}/noc", ops),
            ("link board, 10,000 links", f"{base}/links", ops),
        ]
        results = {}
        for name, url, cookie in runs:
            wrk(url, cookie, 3, args.connections)  # warm the caches and the pool
            results[name] = wrk(url, cookie, args.seconds, args.connections)
        anchor = results["/healthz (anchor)"]["rate"]
        print(f"{args.connections} concurrent clients, {args.seconds} s each, wrk -t2")
        for name, r in results.items():
            print(
                f"  {name:<26} {r['rate']:>8,.0f} req/s  p50 {r['p50_ms']:7.1f} ms  "
                f"p99 {r['p99_ms']:7.1f} ms  non-2xx {r['non_2xx']:.0f}  "
                f"ratio to anchor {r['rate'] / anchor:.3f}"
            )
        for name in ("customer link page", "NOC dashboard"):
            p99 = results[name]["p99_ms"]
            print(f"{name} p99 {p99:.1f} ms (target < 150 ms): "
                  f"{'met' if p99 < 150 else 'NOT met'}")  # fmt: skip
    finally:
        portal.terminate()
        try:
            portal.wait(60)
        except subprocess.TimeoutExpired:
            portal.kill()
        stop.set()
        feeder.join()
        server.stop()


if __name__ == "__main__":
    main()
