"""ICMP echo probe: a burst of ``count`` echoes giving loss, RTT and jitter.

Never raises for the target's failure: no reply is ``down``, an unresolvable name is
``down`` with ``dns: ...``, missing socket privilege is ``unknown``.
"""

from __future__ import annotations

import icmplib

from linkwatch.config import IcmpProbe
from linkwatch.domain import Outcome, ProbeResult
from probes.context import ProbeContext


async def probe_icmp(spec: IcmpProbe, ctx: ProbeContext) -> ProbeResult:
    if ctx.icmp_privileged is None:
        return ProbeResult(Outcome.UNKNOWN, error=ctx.icmp_error or "icmp unavailable")
    try:
        host = await icmplib.async_ping(
            spec.host,
            count=spec.count,
            interval=spec.spacing.total_seconds(),
            timeout=spec.timeout.total_seconds(),
            privileged=ctx.icmp_privileged,
        )
    except icmplib.NameLookupError:
        return ProbeResult(Outcome.DOWN, loss_pct=100.0, error=f"dns: cannot resolve {spec.host}")
    except icmplib.SocketPermissionError:
        return ProbeResult(Outcome.UNKNOWN, error="no permission for ICMP sockets")
    except icmplib.ICMPLibError as exc:
        return ProbeResult(Outcome.DOWN, loss_pct=100.0, error=f"icmp: {exc}")

    loss_pct = host.packet_loss * 100.0
    if host.packets_received == 0:
        return ProbeResult(
            Outcome.DOWN,
            loss_pct=loss_pct,
            error=f"no reply ({host.packets_sent}/{host.packets_sent} lost)",
        )
    return ProbeResult(
        Outcome.UP,
        rtt_ms=host.avg_rtt,
        rtt_min_ms=host.min_rtt,
        rtt_max_ms=host.max_rtt,
        jitter_ms=host.jitter,
        loss_pct=loss_pct,
    )
