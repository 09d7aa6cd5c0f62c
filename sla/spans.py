"""Exact time-set arithmetic on integer microseconds since the epoch.

A `SpanSet` is a sorted list of disjoint half-open spans [start, end). Everything the SLA
engine measures (down time, excluded maintenance, unknown time) is such a set, so union,
intersection and difference are all it needs; lengths are integers, never floats.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US_PER_S = 1_000_000


def to_us(moment: datetime) -> int:
    """A tz-aware moment as integer microseconds since the epoch (exact)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: SLA times must be timezone-aware")
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True)
class SpanSet:
    spans: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, spans: Iterable[tuple[int, int]]) -> SpanSet:
        """Normalise any spans: drop empty ones, sort, merge overlapping and touching."""
        merged: list[tuple[int, int]] = []
        for start, end in sorted(s for s in spans if s[1] > s[0]):
            if merged and start <= merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return cls(tuple(merged))

    @classmethod
    def between(cls, start: datetime, end: datetime) -> SpanSet:
        return cls.of([(to_us(start), to_us(end))])

    @property
    def length_us(self) -> int:
        return sum(end - start for start, end in self.spans)

    def __bool__(self) -> bool:
        return bool(self.spans)

    def __or__(self, other: SpanSet) -> SpanSet:
        return SpanSet.of(self.spans + other.spans)

    def __and__(self, other: SpanSet) -> SpanSet:
        out: list[tuple[int, int]] = []
        i = j = 0
        a, b = self.spans, other.spans
        while i < len(a) and j < len(b):
            start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
            if start < end:
                out.append((start, end))
            if a[i][1] < b[j][1]:
                i += 1
            else:
                j += 1
        return SpanSet(tuple(out))

    def __sub__(self, other: SpanSet) -> SpanSet:
        out: list[tuple[int, int]] = []
        j = 0
        b = other.spans
        for start, end in self.spans:
            cursor = start
            while j < len(b) and b[j][1] <= cursor:
                j += 1
            k = j
            while k < len(b) and b[k][0] < end:
                if b[k][0] > cursor:
                    out.append((cursor, b[k][0]))
                cursor = max(cursor, b[k][1])
                if cursor >= end:
                    break
                k += 1
            if cursor < end:
                out.append((cursor, end))
        return SpanSet(tuple(out))
