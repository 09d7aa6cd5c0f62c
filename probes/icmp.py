"""ICMP echo probe: a burst of ``count`` echoes giving loss, RTT min/avg/max and jitter.

The echoes go through the process's one shared engine (`probes.icmp_engine`), never a
socket of their own. Never raises for the target's failure: no reply is ``down``. What
is the monitor's own trouble (`probes.faults`) is ``unknown`` with the reason: an
unresolvable name, missing socket privilege, echoes the kernel refused for reasons of
this machine (no route of its own, a local firewall, no buffers). Loss counts only the
echoes that left: those the monitor could not send measured nothing.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging

from kernel.config import IcmpProbe
from kernel.domain import Outcome, ProbeResult
from probes.context import ProbeContext, Resolver
from probes.faults import describe_fault, monitor_fault, unresolved
from probes.icmp_engine import BurstResult, IcmpUnavailable

log = logging.getLogger(__name__)


async def probe_icmp(spec: IcmpProbe, ctx: ProbeContext) -> ProbeResult:
    engine = ctx.icmp_engine
    if ctx.icmp_privileged is None or engine is None:
        return ProbeResult(Outcome.UNKNOWN, error=ctx.icmp_error or "icmp unavailable")
    address = await _resolve(spec.host, ctx.resolver)
    if address is None:
        return unresolved(spec.host)
    try:
        burst = await engine.ping(
            address,
            count=spec.count,
            spacing_s=spec.spacing.total_seconds(),
            timeout_s=spec.timeout.total_seconds(),
        )
    except IcmpUnavailable as exc:
        return ProbeResult(Outcome.UNKNOWN, error=str(exc))
    mine = burst.refused > 0 and monitor_fault(burst.send_errno, (address,))
    return summarize(burst, address=address, monitor_refused=mine)


def summarize(
    burst: BurstResult, *, address: str = "", monitor_refused: bool = False
) -> ProbeResult:
    """Loss, RTT min/avg/max and jitter of one burst. Jitter is the mean absolute
    difference between consecutive RTTs received, as icmplib defines it.

    With `monitor_refused`, the echoes the kernel refused were the monitor's trouble:
    they are left out of the loss, and a burst of which none left is ``unknown``."""
    sent = burst.sent - burst.refused if monitor_refused else burst.sent
    if sent == 0:
        reason = describe_fault(burst.send_errno, burst.send_error or "", (address,))
        return ProbeResult(Outcome.UNKNOWN, error=f"{reason}; no echo could be sent")
    lost = sent - burst.received
    loss_pct = round(100.0 * lost / sent, 3)
    rtts = [rtt for rtt in burst.rtts_ms if rtt is not None]
    if not rtts:
        error = f"no reply ({lost}/{sent} lost)"
        if burst.send_error:
            error = f"{error}; send: {burst.send_error}"
        return ProbeResult(Outcome.DOWN, loss_pct=loss_pct, error=error)
    deltas = [abs(a - b) for a, b in itertools.pairwise(rtts)]
    return ProbeResult(
        Outcome.UP,
        rtt_ms=round(sum(rtts) / len(rtts), 3),
        rtt_min_ms=min(rtts),
        rtt_max_ms=max(rtts),
        jitter_ms=round(sum(deltas) / len(deltas), 3) if deltas else 0.0,
        loss_pct=loss_pct,
    )


async def _resolve(host: str, resolver: Resolver) -> str | None:
    """The address to ping: an IP literal as it is, a name through the resolver."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    try:
        addresses = await resolver(host)
    except (OSError, UnicodeError) as exc:  # gaierror is an OSError; IDNA errors are not
        log.debug("icmp dns failed host=%s error=%s", host, exc)
        return None
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            continue
        return address
    return None
