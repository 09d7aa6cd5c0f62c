"""How measurements read on the portal's pages; the figures shared with notifications
(durations, times, percentages, money) come from `kernel.formatting`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from fractions import Fraction

from kernel.domain import LinkStatus
from kernel.formatting import (
    MISSING,
    NBSP,
    decimal_pct,
    decimal_text,
    duration_text,
    local_time,
    money,
)
from sla.compute import truncate_pct

__all__ = [
    "MISSING",
    "NBSP",
    "STATUS_LABELS",
    "Moment",
    "decimal_pct",
    "decimal_text",
    "duration_text",
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
        relative = f"in {duration_text(at - now, smallest='min')}"
    else:
        relative = f"{'' if exact else 'over '}{duration_text(now - at, smallest='min')} ago"
    return Moment(
        relative=relative,
        local=local_time(at, tz) if exact else f"at or before {local_time(at, tz)}",
        iso=at.astimezone(UTC).isoformat(timespec="seconds"),
    )


def pct_text(ratio: Fraction | None, places: int = 4) -> str:
    """A ratio as a percentage truncated like the SLA engine's ("99.4999 %"), or "n/a"."""
    return decimal_pct(truncate_pct(ratio, places), trim=True)


def money_text(amount: Decimal, currency: str) -> str:
    return f"{amount:,}{NBSP}{currency}"


def signed_money_text(amount: Decimal, currency: str) -> str:
    return ("+" if amount > 0 else "") + money_text(amount, currency)
