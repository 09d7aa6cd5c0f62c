"""Performance over a window's available time, for latency and loss objectives.

Only contracts with such objectives need it, and only their links' samples in the window
are read (collector.performance). Reads; never writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from collector import Database
from collector.performance import window_performance as stored_performance
from sla.compute import Measurements


async def window_performance(
    db: Database, probes: Sequence[tuple[str, str]], start: datetime, end: datetime
) -> Measurements:
    """Mean and p95 RTT and mean loss over [start, end) of these (link, probe) pairs."""
    found = await stored_performance(db, probes, start, end)
    return Measurements(
        rtt_mean_ms=found.rtt_mean_ms,
        rtt_p95_ms=found.rtt_p95_ms,
        loss_mean_pct=found.loss_mean_pct,
    )
