"""Generated history for `linkwatch demo`: weeks of plausible samples with short outages,
SLA-breaching outages, degraded spells, monitor gaps and maintenance windows (some
announced in time, some late, some overrunning).

So that every run shows each feature from its first page view, the history can end with
a link down for a while already (`down_now`: its live probe keeps it down) and a link
that breached its contract the week before (`breached`), whatever the random events.

Generation is deterministic: each link's events and noise are seeded by the link and the
UTC week, so regenerating an overlapping range yields the same samples (which the
idempotent write path then stores once). Pure: no I/O, no clock; the caller passes times.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from kernel.config import Config, Link
from kernel.domain import MaintenanceWindow, Outcome, Sample

STEP = timedelta(minutes=1)
WEEK = timedelta(days=7)
DOWN_SO_FAR = timedelta(minutes=17)  # how long a `down_now` link has been down at the end
BREACH = timedelta(hours=3)  # a `breached` link's outage the week before: past any target
_EPOCH_MONDAY = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday: weeks are counted from here


@dataclass(frozen=True, slots=True)
class Spell:
    start: datetime
    end: datetime
    kind: Literal["down", "degraded", "gap"]


@dataclass(frozen=True, slots=True)
class History:
    samples: list[Sample]
    maintenance: list[MaintenanceWindow]


def generate_history(
    config: Config,
    start: datetime,
    end: datetime,
    *,
    seed: str = "linkwatch-demo",
    down_now: Collection[str] = (),
    breached: Collection[str] = (),
) -> History:
    """Samples on a one-minute grid in [start, end) for every probe of every link; the
    links in `down_now` down for the last `DOWN_SO_FAR`, those in `breached` down for
    `BREACH` on the Wednesday of the week before `end`'s."""
    samples: list[Sample] = []
    maintenance: dict[str, MaintenanceWindow] = {}
    last = _on_grid(end - DOWN_SO_FAR)
    this_week = _EPOCH_MONDAY + ((end - _EPOCH_MONDAY) // WEEK) * WEEK
    breach_at = this_week - WEEK + timedelta(days=2, hours=9)
    story = {
        link_id: [Spell(last, end + STEP, "down")] if link_id in down_now else []
        for link_id in {*down_now, *breached}
    }
    for link_id in breached:
        story[link_id].append(Spell(breach_at, breach_at + BREACH, "down"))
    for week in _weeks(start, end):
        gaps = _monitor_gaps(seed, week)
        for link in config.links:
            tz = config.customer(link.customer).tz
            spells, windows = _link_week(seed, link, week, tz)
            for window in windows:
                if window.starts_at < end and window.ends_at > start - WEEK:
                    maintenance[window.id] = window
            samples.extend(
                s
                # The story's spells first: they hold even over a monitor gap.
                for s in _link_samples(seed, link, week, [*story.get(link.id, []), *gaps, *spells])
                if start <= s.observed_at < end
            )
    return History(samples=samples, maintenance=sorted(maintenance.values(), key=_by_start))


def _by_start(window: MaintenanceWindow) -> datetime:
    return window.starts_at


def _weeks(start: datetime, end: datetime) -> Iterator[datetime]:
    week = _EPOCH_MONDAY + ((start - _EPOCH_MONDAY) // WEEK) * WEEK
    while week < end:
        yield week
        week += WEEK


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - demo data


def _monitor_gaps(seed: str, week: datetime) -> list[Spell]:
    """Now and then the monitor itself is offline: no samples anywhere, i.e. unknown time."""
    rng = _rng(seed, "gap", week.isoformat())
    if rng.random() >= 0.3:
        return []
    start = _on_grid(week + rng.uniform(0, 1) * WEEK)
    return [Spell(start, start + timedelta(minutes=rng.randint(60, 150)), "gap")]


def _link_week(
    seed: str, link: Link, week: datetime, tz: ZoneInfo
) -> tuple[list[Spell], list[MaintenanceWindow]]:
    rng = _rng(seed, link.id, "events", week.isoformat())
    spells: list[Spell] = []

    def spell(minutes: int, kind: Literal["down", "degraded"], at: datetime | None = None) -> None:
        begin = _on_grid(at if at is not None else week + rng.uniform(0, 1) * WEEK)
        spells.append(Spell(begin, begin + timedelta(minutes=minutes), kind))

    for _ in range(rng.choice([0, 1, 1, 2])):
        spell(rng.randint(2, 15), "down")
    if rng.random() < 0.2:  # a long outage: enough to breach most weekly targets
        spell(rng.randint(90, 300), "down")
    for _ in range(rng.randint(1, 3)):
        spell(rng.randint(20, 60), "degraded")

    windows: list[MaintenanceWindow] = []
    if rng.random() < 0.4:
        # Tuesday 02:00-04:00 in the customer's time zone.
        day = (week + timedelta(days=1)).date()
        starts = datetime.combine(day, time(2, 0), tzinfo=tz).astimezone(UTC)
        ends = starts + timedelta(hours=2)
        late = rng.random() < 0.25  # announced too late to be excluded
        announced = starts - (timedelta(hours=20) if late else timedelta(days=7))
        overrun = rng.random() < 0.2
        work = timedelta(minutes=rng.randint(130, 160) if overrun else rng.randint(20, 70))
        spell(int(work / timedelta(minutes=1)), "down", at=starts + timedelta(minutes=10))
        windows.append(
            MaintenanceWindow(
                id=f"demo-{link.id}-{day.isoformat()}",
                starts_at=starts,
                ends_at=ends,
                announced_at=announced,
                description="Planned line maintenance" + (" (short notice)" if late else ""),
                link_ids=(link.id,),
            )
        )
    return spells, windows


def _on_grid(moment: datetime) -> datetime:
    return _EPOCH_MONDAY + ((moment - _EPOCH_MONDAY) // STEP) * STEP


def _link_samples(
    seed: str, link: Link, week: datetime, spells: Sequence[Spell]
) -> Iterator[Sample]:
    base_rtt_ms = 0.3 + _rng(seed, link.id, "rtt").random() * 25.0
    for probe in link.probes:
        rng = _rng(seed, link.id, probe.id, "noise", week.isoformat())
        icmp = probe.kind == "icmp"
        moment = week
        while moment < week + WEEK:
            state = next((s.kind for s in spells if s.start <= moment < s.end), None)
            if state != "gap":
                yield _sample(link, probe.id, moment, state, rng, base_rtt_ms, icmp)
            moment += STEP


def _sample(
    link: Link,
    probe_id: str,
    moment: datetime,
    state: str | None,
    rng: random.Random,
    base_rtt_ms: float,
    icmp: bool,
) -> Sample:
    if state == "down":
        return Sample(
            link.id,
            probe_id,
            moment,
            Outcome.DOWN,
            loss_pct=100.0 if icmp else None,
            error="no reply (5/5 lost)" if icmp else "connect timeout after 0:00:02",
        )
    rtt = base_rtt_ms * (1 + abs(rng.gauss(0, 0.1)))
    loss = 20.0 if rng.random() < 0.002 else 0.0
    if state == "degraded":
        rtt = rtt * rng.uniform(3, 8) + 40.0
        loss = float(rng.choice([0, 2, 4, 6, 10]))
    thresholds = link.thresholds
    degraded = (thresholds.rtt_ms is not None and rtt >= thresholds.rtt_ms) or (
        icmp and thresholds.loss_pct is not None and loss >= thresholds.loss_pct
    )
    jitter = abs(rng.gauss(0, rtt * 0.05))
    return Sample(
        link.id,
        probe_id,
        moment,
        Outcome.DEGRADED if degraded else Outcome.UP,
        rtt_ms=round(rtt, 3),
        rtt_min_ms=round(max(rtt - 2 * jitter, rtt * 0.8), 3) if icmp else None,
        rtt_max_ms=round(rtt + 2 * jitter, 3) if icmp else None,
        jitter_ms=round(jitter, 3) if icmp else None,
        loss_pct=loss if icmp else None,
        error="rtt or loss above the link's thresholds" if degraded else None,
    )
