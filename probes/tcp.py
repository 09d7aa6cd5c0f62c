"""TCP probe: the time to complete a connection (one SYN / SYN-ACK round trip).

Phases are milestones in ms since the run started, as curl reports them: ``dns`` (only
for a host name) then ``connect``. ``rtt_ms`` is the handshake alone. Refused, unreachable
or timed out is ``down`` with a short error; what is the monitor's own trouble
(`probes.faults`: an unresolvable name, no route of its own, a local firewall, no
sockets) is ``unknown``. It never sends a byte: the connection is closed as soon as it is
made. The HTTP probe builds on the helpers here.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import time
from collections.abc import Sequence
from datetime import timedelta

import aiohappyeyeballs

from kernel.config import TcpProbe
from kernel.domain import Outcome, ProbeResult
from kernel.durations import format_duration
from probes.context import ProbeContext
from probes.faults import UNREACHABLE_ERRNOS, describe_fault, monitor_fault, unresolved

# RFC 8305's recommended delay before racing the next address family.
HAPPY_EYEBALLS_DELAY_S = 0.25


class Milestones:
    """Moments of one run, kept as ms since it started; the first mark of a name wins."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.marks: dict[str, float] = {}

    def now_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def mark(self, name: str) -> float:
        return self.marks.setdefault(name, self.now_ms())


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def addr_infos(addresses: Sequence[str], port: int) -> list[aiohappyeyeballs.AddrInfoType]:
    """Socket addresses for aiohappyeyeballs, in the resolver's order."""
    infos: list[aiohappyeyeballs.AddrInfoType] = []
    for address in addresses:
        host, _, scope = address.partition("%")
        if ":" in host:
            # A link-local address carries its interface as "%eth0" (or "%2").
            scope_id = (
                int(scope) if scope.isdigit() else socket.if_nametoindex(scope) if scope else 0
            )
            sockaddr = (host, port, 0, scope_id)
            infos.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        else:
            infos.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port)))
    return infos


def dns_reason(exc: OSError) -> str:
    return str(exc.strerror or exc)


def describe_connect_error(exc: OSError, addresses: Sequence[str] = ()) -> tuple[Outcome, str]:
    """The outcome and short error for a failed connect to `addresses`."""
    if exc.errno == errno.ECONNREFUSED:
        return Outcome.DOWN, "connection refused"
    tried = tuple(addresses)
    if monitor_fault(exc.errno, tried):
        return Outcome.UNKNOWN, describe_fault(exc.errno, str(exc.strerror or exc), tried)
    if exc.errno in UNREACHABLE_ERRNOS:
        return Outcome.DOWN, "unreachable"
    if exc.errno is None and str(exc).startswith("Multiple exceptions"):
        # Every address failed, each differently (say ::1 refused, 127.0.0.1 unreachable).
        return Outcome.DOWN, "connect failed on every address"
    return Outcome.DOWN, f"connect: {exc.strerror or exc}"


def describe_timeout(timeout: timedelta, stage: str) -> str:
    return f"timeout after {format_duration(timeout)} ({stage})"


async def probe_tcp(spec: TcpProbe, ctx: ProbeContext) -> ProbeResult:
    clock = Milestones()
    stage = "dns"
    try:
        async with asyncio.timeout(spec.timeout.total_seconds()):
            if is_ip_literal(spec.host):
                addresses: Sequence[str] = [spec.host]
            else:
                try:
                    addresses = await ctx.resolver(spec.host)
                except OSError as exc:
                    return unresolved(spec.host, dns_reason(exc))
                clock.mark("dns")
                if not addresses:
                    return ProbeResult(
                        Outcome.UNKNOWN,
                        error=f"dns: no address for {spec.host}",
                        phases_ms=clock.marks,
                    )
            stage = "connect"
            sock = await aiohappyeyeballs.start_connection(
                addr_infos(addresses, spec.port), happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S
            )
    except TimeoutError:
        return ProbeResult(
            Outcome.DOWN, error=describe_timeout(spec.timeout, stage), phases_ms=clock.marks
        )
    except OSError as exc:
        outcome, error = describe_connect_error(exc, addresses)
        return ProbeResult(outcome, error=error, phases_ms=clock.marks)
    connect_ms = clock.mark("connect")
    # The handshake completing is the measurement; close without sending anything.
    sock.close()
    rtt_ms = connect_ms - clock.marks.get("dns", 0.0)
    return ProbeResult(Outcome.UP, rtt_ms=rtt_ms, phases_ms=clock.marks)
