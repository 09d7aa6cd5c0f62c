"""Durations as people write them in config: ``30s``, ``5m``, ``72h``, ``1h30m``.

Parsing is strict: a bare number, a negative value, an unknown unit or a duration longer
than `MAX_DURATION` is an error, because a silently misread interval would change what
is measured and billed, and one beyond any calendar would break the date arithmetic
done with it. Numbers are read exactly (decimal, never float), whatever their length.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from kernel.formatting import excerpt

_UNITS: dict[str, int] = {  # microseconds
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
ALLOWED = "a number with a unit ms, s, m, h, d or w, e.g. 200ms, 30s, 5m, 72h or 1h30m"
# Longer than any contract, retention or notice; short enough that a date plus or minus
# it is still a date.
MAX_DURATION = timedelta(days=36500)
MAX_DECIMALS = 12


def parse_duration(text: str) -> timedelta:
    """Parse ``"1h30m"`` into a timedelta; raise ValueError naming what is allowed."""
    stripped = text.strip()
    pos = 0
    total = Decimal(0)
    # Each part is matched where the previous one ended: a search would rescan the
    # rest of the text for every part, slow on a long one.
    too_long = False
    while match := _PART.match(stripped, pos):
        whole, _, decimals = match.group(1).partition(".")
        whole, decimals = whole.lstrip("0") or "0", decimals.rstrip("0")
        if len(decimals) > MAX_DECIMALS:
            raise ValueError(
                f"{excerpt(text)} has more than {MAX_DECIMALS} decimals; a duration is "
                "counted in microseconds"
            )
        # 15 digits of even milliseconds are past MAX_DURATION; with these bounds the
        # sum is exact in Decimal's 28 digits.
        too_long = too_long or len(whole) > 15
        if not too_long:
            total += Decimal(f"{whole}.{decimals or 0}") * _UNITS[match.group(2)]
        pos = match.end()
    if not stripped or pos != len(stripped):
        raise ValueError(f"{excerpt(text)} is not a duration; use {ALLOWED}")
    if too_long or total > _UNITS["d"] * MAX_DURATION.days:
        raise ValueError(
            f"{excerpt(text)} is longer than {format_duration(MAX_DURATION)} (100 years); "
            "use a shorter duration"
        )
    # Whole microseconds, rounded half to even as timedelta itself rounds.
    return timedelta(microseconds=int(total.to_integral_value(ROUND_HALF_EVEN)))


def format_duration(value: timedelta) -> str:
    """Render a timedelta in the shortest exact form ``parse_duration`` reads back."""
    micros = value // timedelta(microseconds=1)
    if micros == 0:
        return "0s"
    if micros % 1000:
        return f"{micros / 1000}ms"
    millis = micros // 1000
    if millis % 1000:
        return f"{millis / 1000:g}s" if 1000 < millis < 60_000 else f"{millis}ms"
    parts = []
    seconds = millis // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
