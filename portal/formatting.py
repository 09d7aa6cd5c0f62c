"""How measurements read on the portal's pages; the figures shared with notifications
(durations, times, percentages, money) come from `linkwatch.formatting`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from linkwatch.domain import LinkStatus
from linkwatch.formatting import MISSING, NBSP, decimal_pct, elapsed, local_time, money

__all__ = [
    "MISSING",
    "NBSP",
    "STATUS_LABELS",
    "Moment",
    "decimal_pct",
    "elapsed",
    "local_time",
    "milliseconds",
    "moment",
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


@dataclass(frozen=True, slots=True)
class Moment:
    relative: str  # "3 h 5 min ago"
    local: str  # "2024-05-01 14:03 CEST", in the viewer's time zone
    iso: str  # UTC, for <time datetime>


def moment(at: datetime | None, now: datetime, tz: tzinfo, *, exact: bool = True) -> Moment | None:
    """`exact` False: the event was at `at` or earlier (only recent samples were read)."""
    if at is None:
        return None
    if at > now:
        relative = f"in {elapsed(at - now)}"
    else:
        relative = f"{'' if exact else 'over '}{elapsed(now - at)} ago"
    return Moment(
        relative=relative,
        local=local_time(at, tz) if exact else f"at or before {local_time(at, tz)}",
        iso=at.astimezone(UTC).isoformat(timespec="seconds"),
    )
