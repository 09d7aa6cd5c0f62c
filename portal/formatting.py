"""How measurements read on the portal's pages; the figures shared with reports and
notifications (availability, targets, durations, times, money) come from
`kernel.formatting`, one rule per kind, and are only re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from kernel.domain import LinkStatus
from kernel.formatting import (
    DEFAULT_AVAILABILITY_DECIMALS,
    MISSING,
    NBSP,
    availability_text,
    decimal_pct,
    decimal_text,
    duration_text,
    local_span,
    local_time,
    met_text,
    money,
    ratio_availability_text,
    share_text,
    target_text,
)

__all__ = [
    "DEFAULT_AVAILABILITY_DECIMALS",
    "MISSING",
    "NBSP",
    "STATUS_LABELS",
    "Moment",
    "availability_text",
    "decimal_pct",
    "decimal_text",
    "duration_text",
    "local_span",
    "local_time",
    "met_text",
    "milliseconds",
    "moment",
    "money",
    "percent",
    "ratio_availability_text",
    "share_text",
    "target_text",
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
        relative = f"in {duration_text(at - now, smallest='min')}"
    else:
        relative = f"{'' if exact else 'over '}{duration_text(now - at, smallest='min')} ago"
    return Moment(
        relative=relative,
        local=local_time(at, tz) if exact else f"at or before {local_time(at, tz)}",
        iso=at.astimezone(UTC).isoformat(timespec="seconds"),
    )
