"""Whose trouble is it: the monitor's own failures are `unknown`, never the target's `down`.

A billing department pays credits for what the probes record, so a probe records `down`
only for what the target (or the path to it) did: no reply, a refused connection, an
answer that fails its check. What the monitor could not do itself is `unknown`, with the
reason, and counts as no measurement:

- it could not resolve the target's name (its resolver, or its own view of DNS);
- the kernel refused to send for a reason of this machine: no route of its own to the
  target (`ENETUNREACH`, or `EHOSTUNREACH` where no local route exists), a local
  firewall (`EPERM`, `EACCES`), an interface that is down (`ENETDOWN`), no buffers,
  memory, sockets or source ports (`ENOBUFS`, `ENOMEM`, `EMFILE`, `ENFILE`,
  `EADDRNOTAVAIL`).

`EHOSTUNREACH` and `ENETUNREACH` are ambiguous on their own: a router on the path says
the same when the customer's link is down (its route withdrawn), and the kernel says
`EHOSTUNREACH` when a directly connected target stops answering ARP. So those two are
the monitor's only when a look at this machine's own routing table (`has_route`: a UDP
socket's connect, which sends nothing) finds no route to the address.

Pure rules plus that one local look; imports nothing of ours but the kernel.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from kernel.domain import Outcome, ProbeResult

# The machine is short of something, or forbids itself the send: never the target's doing.
MONITOR_ERRNOS = frozenset(
    {
        errno.EPERM,
        errno.EACCES,
        errno.ENETDOWN,
        errno.ENOBUFS,
        errno.ENOMEM,
        errno.EMFILE,
        errno.ENFILE,
        errno.EADDRNOTAVAIL,
    }
)
# The target's or the monitor's, as the local routing table says.
UNREACHABLE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})


def has_route(address: str) -> bool:
    """Whether this machine has a route of its own to the IP `address`. Connecting a UDP
    socket only looks the route up; no packet leaves."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return True  # not an address: nothing to look up, so not known to be ours
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((address, 9))
    except OSError as exc:
        return exc.errno not in UNREACHABLE_ERRNOS | {errno.ENETDOWN}
    return True


def monitor_fault(code: int | None, addresses: tuple[str, ...] = ()) -> bool:
    """Whether an error with `code` (an errno) on the way to `addresses` is the monitor's:
    a shortage or prohibition of this machine, or no route of its own to any of them."""
    if code in MONITOR_ERRNOS:
        return True
    if code in UNREACHABLE_ERRNOS:
        return bool(addresses) and not any(has_route(address) for address in addresses)
    return False


def unresolved(host: str, reason: str | None = None) -> ProbeResult:
    """The monitor could not resolve `host`: no measurement of the target at all."""
    detail = f" ({reason})" if reason else ""
    return ProbeResult(Outcome.UNKNOWN, error=f"dns: cannot resolve {host}{detail}")


def describe_fault(code: int | None, text: str, addresses: tuple[str, ...] = ()) -> str:
    """The reason of a monitor fault, as a sample's error: "monitor: no route to
    ADDRESS", "monitor: Operation not permitted"."""
    if code in UNREACHABLE_ERRNOS and addresses:
        return f"monitor: no route to {', '.join(addresses)}"
    return f"monitor: {text}"
