"""What every probe may need from the process: ICMP privileges found once at start-up, the
one shared ICMP engine, and the name resolver.

Detection opens and closes sockets only; it sends nothing. Nothing here queries DNS until
a probe asks for a name.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from kernel.config import ProbingConfig
from probes.icmp_engine import IcmpEngine
from probes.snmp.poller import SnmpPoller

log = logging.getLogger(__name__)

# Host name -> its IP addresses, best first. Raises OSError (socket.gaierror) when the
# name does not resolve. Injectable so that tests never query a DNS server.
Resolver = Callable[[str], Awaitable[Sequence[str]]]

NO_PERMISSION = "no permission for ICMP sockets"
GRANT_HINT = (
    "grant it with `setcap cap_net_raw+ep $(readlink -f $(which python3))`, the NET_RAW "
    "capability in a container, or `sysctl net.ipv4.ping_group_range='0 2147483647'`"
)


async def system_resolver(host: str) -> Sequence[str]:
    """The system's resolver (getaddrinfo in the loop's executor), addresses deduplicated."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    addresses: dict[str, None] = {}
    for family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        scope = sockaddr[3] if family == socket.AF_INET6 and len(sockaddr) == 4 else 0
        if scope and "%" not in address:
            address = f"{address}%{scope}"  # a link-local address needs its interface
        addresses[address] = None
    return list(addresses)


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """Shared facts and services for probe runs.

    With ICMP allowed and no engine given, one is created for the privilege found, so a
    context is always ready to probe.
    """

    # True: raw ICMP sockets; False: unprivileged datagram ICMP sockets; None: neither works.
    icmp_privileged: bool | None = True
    icmp_error: str | None = None
    icmp_engine: IcmpEngine | None = None
    resolver: Resolver = system_resolver
    snmp: SnmpPoller = field(default_factory=SnmpPoller)  # coalesces GETs per device

    def __post_init__(self) -> None:
        if self.icmp_engine is None and self.icmp_privileged is not None:
            object.__setattr__(self, "icmp_engine", IcmpEngine(privileged=self.icmp_privileged))

    async def close(self) -> None:
        """Close the shared sockets once no probe runs any more (at shutdown)."""
        if self.icmp_engine is not None:
            self.icmp_engine.close()
        await self.snmp.close()


def detect_context(
    limits: ProbingConfig | None = None, *, resolver: Resolver = system_resolver
) -> ProbeContext:
    """Find out once which ICMP sockets this process may open, and set up the shared ICMP
    engine and SNMP poller with the configured limits."""
    limits = limits or ProbingConfig()
    snmp = SnmpPoller(
        max_in_flight=limits.snmp_requests, per_device_in_flight=limits.snmp_requests_per_device
    )
    for privileged, sock_type in ((True, socket.SOCK_RAW), (False, socket.SOCK_DGRAM)):
        try:
            socket.socket(socket.AF_INET, sock_type, socket.IPPROTO_ICMP).close()
        except OSError:
            continue
        log.info("icmp sockets=%s", "raw" if privileged else "datagram")
        engine = IcmpEngine(privileged=privileged, max_rate_pps=limits.icmp_max_pps)
        return ProbeContext(
            icmp_privileged=privileged, icmp_engine=engine, resolver=resolver, snmp=snmp
        )
    log.warning("icmp unavailable: every ICMP sample will be unknown; %s", GRANT_HINT)
    return ProbeContext(
        icmp_privileged=None,
        icmp_error=f"{NO_PERMISSION} (needs CAP_NET_RAW or net.ipv4.ping_group_range)",
        resolver=resolver,
        snmp=snmp,
    )
