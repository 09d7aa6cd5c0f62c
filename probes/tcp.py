"""TCP probe: time to complete a connection. Refused, unreachable or timed out is ``down``."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time

from linkwatch.config import TcpProbe
from linkwatch.domain import Outcome, ProbeResult
from probes.context import ProbeContext


async def probe_tcp(spec: TcpProbe, ctx: ProbeContext) -> ProbeResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(spec.timeout.total_seconds()):
            _, writer = await asyncio.open_connection(spec.host, spec.port)
    except TimeoutError:
        return ProbeResult(Outcome.DOWN, error=f"connect timeout after {spec.timeout}")
    except OSError as exc:
        return ProbeResult(Outcome.DOWN, error=_describe(exc))
    connect_ms = (time.perf_counter() - started) * 1000.0
    writer.close()
    with contextlib.suppress(OSError):  # the connection was made: that is what we measure
        await writer.wait_closed()
    return ProbeResult(Outcome.UP, rtt_ms=connect_ms, phases_ms={"connect": connect_ms})


def _describe(exc: OSError) -> str:
    if exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    if isinstance(exc, socket.gaierror):
        return f"dns: cannot resolve host ({exc.strerror or exc})"
    return f"connect: {exc.strerror or exc}"
