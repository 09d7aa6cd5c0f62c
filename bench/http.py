"""HTTP probe throughput: checks per second, each on a fresh connection, against a local
aiohttp server, next to anchors doing the same request the cheapest way in the same run.

    .venv/bin/python bench/http.py [--checks 3000] [--concurrency 32] [--tls]

Anchors: a raw asyncio client (open a connection, send one HTTP/1.1 GET with
``Connection: close``, read the status line and body, close) and ApacheBench (``ab``,
no keep-alive) when installed (Debian: apache2-utils). The server runs in its own process
on 127.0.0.1, so client CPU per check is the client's alone. Traffic stays on loopback.

Then, at the live rate (LIVE_RATE checks a second, started on a fixed schedule), both
sides check a page the server holds SLOW_MS before answering: the probe's own figure (its
rtt, the ``total`` phase) next to the raw client's wall time for the same request, so a
probe that reported less (the handshake, as it once did) or more than a client waits
shows here. The saturated run above prints the same medians; there, 32 checks share one
event loop, so both include time spent queued behind the others' CPU work.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where this file would
# shadow the standard library's `http` package that aiohttp imports.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import asyncio
import contextlib
import os
import re
import resource
import shutil
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from kernel.config import HttpProbe
from kernel.domain import Outcome
from probes.context import ProbeContext
from probes.http import probe_http

LIVE_RATE = 10_000 / 30  # checks per second: 10,000 HTTP probes every 30 s
SLOW_MS = 100  # how long /slow holds its answer
PACED_S = 6  # seconds of checks at the live rate, per side


def serve(cert: str | None, key: str | None) -> None:
    """Child process: a small aiohttp app; prints its port, runs until stdin closes."""

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_MS / 1000)
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/health", ok)
        app.router.add_get("/slow", slow)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        context = None
        if cert and key:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context, backlog=1024)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


def cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def run_checks(
    check: Callable[[], Awaitable[bool]], checks: int, concurrency: int
) -> tuple[float, float]:
    """(checks per second, client CPU ms per check); every check must succeed."""
    remaining = checks
    failures = 0

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            if not await check():
                failures += 1

    cpu0, began = cpu_s(resource.RUSAGE_SELF), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for i in range(concurrency):
            group.create_task(worker(), name=f"worker-{i}")
    elapsed = time.perf_counter() - began
    cpu = cpu_s(resource.RUSAGE_SELF) - cpu0
    assert failures == 0, f"{failures} of {checks} checks failed"
    return checks / elapsed, cpu / checks * 1000


async def run_paced(check: Callable[[], Awaitable[bool]], rate: float, seconds: float) -> None:
    """Start checks on a fixed schedule, `rate` a second, however long each takes."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    outcomes: list[bool] = []

    async def one() -> None:
        outcomes.append(await check())

    async with asyncio.TaskGroup() as group:
        for index in range(int(rate * seconds)):
            delay = start + index / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            group.create_task(one(), name=f"check-{index}")
    assert all(outcomes), f"{outcomes.count(False)} of {len(outcomes)} checks failed"


def quantiles(times_ms: list[float]) -> str:
    ordered = sorted(times_ms)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"median {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms"


def probe_check(url: str, times_ms: list[float]) -> Callable[[], Awaitable[bool]]:
    """A check by the probe; each response time it reports goes to `times_ms`."""
    spec = HttpProbe.model_validate(
        {"id": "web", "kind": "http", "url": url, "tls_verify": False, "timeout": "10s"}
    )
    ctx = ProbeContext(icmp_privileged=None)

    async def check() -> bool:
        result = await probe_http(spec, ctx)
        if result.rtt_ms is not None:
            times_ms.append(result.rtt_ms)
        return result.outcome in (Outcome.UP, Outcome.DEGRADED)

    return check


def raw_check(
    port: int, tls: bool, times_ms: list[float], path: str = "/health"
) -> Callable[[], Awaitable[bool]]:
    """A check by the raw client; the wall time of each goes to `times_ms`."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: anchor\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

    async def check() -> bool:
        began = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        writer.write(request)
        response = await reader.read()  # to EOF: Connection: close
        times_ms.append((time.perf_counter() - began) * 1000)
        writer.close()
        with contextlib.suppress(OSError):  # the response is in; a reset at close is fine
            await writer.wait_closed()
        return response.startswith(b"HTTP/1.1 200")

    return check


def ab_rate(url: str, checks: int, concurrency: int) -> tuple[float, float] | None:
    if shutil.which("ab") is None:
        return None
    cpu0 = cpu_s(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["ab", "-q", "-n", str(checks), "-c", str(concurrency), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_s(resource.RUSAGE_CHILDREN) - cpu0
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    assert failed is not None, out
    assert failed.group(1) == "0", out
    rate = re.search(r"Requests per second:\s+([\d.]+)", out)
    assert rate is not None, out
    return float(rate.group(1)), cpu / checks * 1000


def make_certificate(directory: Path) -> tuple[str, str]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "30", "-subj", "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--tls", action="store_true", help="https with a self-signed cert")
    parser.add_argument("--serve", nargs=2, metavar=("CERT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*(value or None for value in args.serve))
        return

    workdir = Path(tempfile.mkdtemp(prefix="lw-bench-http-"))
    cert, key = make_certificate(workdir) if args.tls else ("", "")
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", cert, key],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        scheme = "https" if args.tls else "http"
        url = f"{scheme}://127.0.0.1:{port}/health"
        # A short warm-up so imports, the SSL context and the server's first-request
        # work are not charged to whichever side runs first.
        asyncio.run(run_checks(probe_check(url, []), 100, 4))
        raw_ms: list[float] = []
        probe_ms: list[float] = []
        anchor = asyncio.run(
            run_checks(raw_check(port, args.tls, raw_ms), args.checks, args.concurrency)
        )
        ours = asyncio.run(run_checks(probe_check(url, probe_ms), args.checks, args.concurrency))
        ab = ab_rate(url, args.checks, args.concurrency)
        paced_raw_ms: list[float] = []
        paced_probe_ms: list[float] = []
        slow = raw_check(port, args.tls, paced_raw_ms, "/slow")
        asyncio.run(run_paced(slow, LIVE_RATE, PACED_S))
        slow = probe_check(url.replace("/health", "/slow"), paced_probe_ms)
        asyncio.run(run_paced(slow, LIVE_RATE, PACED_S))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"{args.checks:,} {scheme} checks per side, {args.concurrency} in flight, fresh "
        f"connection each, aiohttp server in its own process; cores: {os.cpu_count()}"
    )
    print(f"raw asyncio client (anchor): {anchor[0]:>8,.0f} checks/s  {anchor[1]:.3f} ms CPU/check")
    if ab is not None:
        print(f"ab, no keep-alive:           {ab[0]:>8,.0f} checks/s  {ab[1]:.3f} ms CPU/check")
    print(f"linkwatch probe_http:        {ours[0]:>8,.0f} checks/s  {ours[1]:.3f} ms CPU/check")
    print(
        f"ratio probe/raw anchor: {ours[0] / anchor[0]:.2f} in rate, "
        f"{ours[1] / anchor[1]:.2f}x the CPU per check"
        + (f"; probe/ab rate {ours[0] / ab[0]:.2f}" if ab is not None else "")
    )
    print(
        f"saturated, response time per check: probe's rtt {quantiles(probe_ms)}; "
        f"raw client's wall time {quantiles(raw_ms)}"
    )
    print(
        f"at the live rate ({LIVE_RATE:,.0f} checks/s for {PACED_S} s), a page held "
        f"{SLOW_MS} ms: probe's rtt {quantiles(paced_probe_ms)}; raw client's wall time "
        f"{quantiles(paced_raw_ms)}"
    )
    print(
        f"live rate {LIVE_RATE:,.0f} checks/s (10,000 HTTP probes / 30 s) needs "
        f"{LIVE_RATE * ours[1] / 1000 * 100:.0f} % of one core for the probes alone"
    )


if __name__ == "__main__":
    main()
