"""Builders for the tests of state derivation and current status: one timeline in
seconds from `T0`, samples from (seconds, outcome[, error]) points, and link and probe
specs carrying only what state derivation reads from a configured link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kernel.domain import LinkStatus, Outcome, Sample

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=30)
STALE = timedelta(seconds=90)
UP, DEGRADED, DOWN, UNKNOWN = (
    LinkStatus.UP,
    LinkStatus.DEGRADED,
    LinkStatus.DOWN,
    LinkStatus.UNKNOWN,
)

Point = tuple[float, str] | tuple[float, str, str]  # (seconds, outcome[, error])


def at(seconds: float) -> datetime:
    """The time `seconds` after T0."""
    return T0 + timedelta(seconds=seconds)


def samples(*points: Point, link: str = "l1", probe: str = "icmp") -> list[Sample]:
    """One sample of `link`/`probe` per point, at `at(seconds)`."""
    return [
        Sample(link, probe, at(p[0]), Outcome(p[1]), error=p[2] if len(p) > 2 else None)
        for p in points
    ]


@dataclass(frozen=True)
class ProbeSpec:
    """A configured probe as state derivation and current status read it."""

    id: str
    kind: str = "icmp"
    interval: timedelta = INTERVAL
    confirm: int = 2
    stale_after: timedelta | None = STALE
    availability: bool = True


@dataclass(frozen=True)
class LinkSpec:
    """A configured link as state derivation and current status read it."""

    id: str
    probes: tuple[ProbeSpec, ...]
    customer: str = "acme"
    description: str = ""
    quorum: int = 1  # sites that must see a probe down (probes `id@site`, one per site)
