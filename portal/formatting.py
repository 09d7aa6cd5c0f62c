"""How measurements read on the portal's pages; the figures shared with notifications
(durations, times, percentages, money) come from `linkwatch.formatting`.
"""

from __future__ import annotations

import math

from linkwatch.domain import LinkStatus
from linkwatch.formatting import MISSING, NBSP, decimal_pct, elapsed, local_time, money

__all__ = [
    "MISSING",
    "NBSP",
    "STATUS_LABELS",
    "decimal_pct",
    "elapsed",
    "local_time",
    "milliseconds",
    "money",
    "percent",
]


STATUS_LABELS = {
    LinkStatus.UP: "Up",
    LinkStatus.DEGRADED: "Degraded",
    LinkStatus.DOWN: "Down",
    LinkStatus.UNKNOWN: "Unknown",
    LinkStatus.MAINTENANCE: "Maintenance",
}


def milliseconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    if value < 10:
        return f"{value:.2f}{NBSP}ms"
    if value < 100:
        return f"{value:.1f}{NBSP}ms"
    return f"{value:.0f}{NBSP}ms"


def percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    if value == int(value):
        return f"{int(value)}{NBSP}%"
    return f"{value:.1f}{NBSP}%"
