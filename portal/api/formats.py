"""How values are written in the API's answers: times in RFC 3339 and UTC, measurements
finite or null (NaN and infinities are not JSON), decimals as exact strings.

Pure: no I/O.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: how an instant sorts in a page cursor's key."""
    return (moment - EPOCH) // MICROSECOND


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def decimal_str(value: Decimal) -> str:
    return f"{value:f}"
