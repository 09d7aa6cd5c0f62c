"""What every probe may need from the process: privileges found once at start-up.

Detection opens and closes sockets only; it sends nothing.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """Shared, read-only facts for probe runs."""

    # True: raw ICMP sockets; False: unprivileged datagram ICMP sockets; None: neither works.
    icmp_privileged: bool | None = True
    icmp_error: str | None = None


def detect_context() -> ProbeContext:
    """Find out once which ICMP sockets this process may open."""
    for privileged, sock_type in ((True, socket.SOCK_RAW), (False, socket.SOCK_DGRAM)):
        try:
            socket.socket(socket.AF_INET, sock_type, socket.IPPROTO_ICMP).close()
        except OSError:
            continue
        log.info("icmp sockets=%s", "raw" if privileged else "datagram")
        return ProbeContext(icmp_privileged=privileged)
    error = "no permission for ICMP sockets"
    log.warning(
        "icmp unavailable: every ICMP sample will be unknown; grant it with "
        "`setcap cap_net_raw+ep $(readlink -f $(which python3))`, the NET_RAW capability "
        "in a container, or `sysctl net.ipv4.ping_group_range='0 2147483647'`"
    )
    return ProbeContext(icmp_privileged=None, icmp_error=error)
