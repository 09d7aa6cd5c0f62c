"""Durations as people write them in config: ``30s``, ``5m``, ``72h``, ``13mo``.

Parsing is strict: a bare number, a negative value or an unknown unit is an error,
because a silently misread interval would change what is measured and billed.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS: dict[str, timedelta] = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
ALLOWED = "a number with a unit ms, s, m, h, d or w, e.g. 200ms, 30s, 5m, 72h or 1h30m"


def parse_duration(text: str) -> timedelta:
    """Parse ``"1h30m"`` into a timedelta; raise ValueError naming what is allowed."""
    stripped = text.strip()
    pos = 0
    total = timedelta()
    for match in _PART.finditer(stripped):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not stripped or pos != len(stripped):
        raise ValueError(f"{text!r} is not a duration; use {ALLOWED}")
    return total


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
