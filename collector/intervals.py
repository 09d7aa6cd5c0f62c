"""Probe and link status intervals, derived exactly from samples: pure functions.

This is the one implementation of the design's "SLA semantics" from samples to statuses:

- a sample's outcome holds from its time until the next sample of its probe, but never
  longer than `stale_after`; from `last + stale_after` the probe is UNKNOWN until its next
  sample (so at exactly `last + stale_after` it is UNKNOWN);
- a probe is DOWN only after `confirm` consecutive down samples, from the first of them;
  downs more than `stale_after` apart, or with any other sample between them, are not
  consecutive, and an unconfirmed run of downs counts as UP;
- a degraded sample gives DEGRADED, an unknown sample UNKNOWN;
- a link is DOWN if any availability probe is DOWN, else DEGRADED if one is degraded (the
  thresholds are the link's, so one probe crossing them is what the customer sees), else
  UP if one is UP, else UNKNOWN;
- a link measured from several sites (kernel.config.sites: one measurement per probe and
  site, each confirmed on its own) votes per probe: the probe is DOWN while at least
  `quorum` of its sites are confirmed DOWN, so an outage starts when the last site
  needed for the quorum confirms it (the latest of the agreeing sites' first failures)
  and ends when fewer than `quorum` still see it; else UNKNOWN while fewer than `quorum`
  sites measure it (a site that is UNKNOWN, blind or silent, does not count), else
  DEGRADED while at least `quorum` see it degraded or down, else UP. A link measured from
  one site (quorum 1, one measurement per probe) is exactly as above.

`derive_probe_intervals` and `derive_link_intervals` are exact (tz-aware datetimes, no
floats); the interval helpers clip, merge and splice their results, and the anchor
functions say where a derivation can restart without changing what lies before it
(`collector.deriver` re-derives incrementally from them). `collector.status` derives the
current status with the same functions.

Nothing here does I/O, reads a clock or computes availability over a window (that is
`sla/`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from kernel.config.sites import base_probe_id
from kernel.domain import LinkStatus, Outcome

_STATUS_OF = {
    Outcome.UP: LinkStatus.UP,
    Outcome.DEGRADED: LinkStatus.DEGRADED,
    Outcome.DOWN: LinkStatus.DOWN,
    Outcome.UNKNOWN: LinkStatus.UNKNOWN,
}

# The last moment a datetime can hold. A stored sample near it (an import that took
# 9999-12-31 at its word) holds its outcome up to it, rather than overflowing.
END_OF_TIME = datetime.max.replace(tzinfo=UTC)


class ProbeSpec(Protocol):
    """What state derivation needs to know about a probe (a config model fits)."""

    @property
    def id(self) -> str: ...
    @property
    def interval(self) -> timedelta: ...
    @property
    def confirm(self) -> int: ...
    @property
    def stale_after(self) -> timedelta | None: ...  # None: 3 x interval
    @property
    def availability(self) -> bool: ...  # counts toward the link's status


class LinkSpec(Protocol):
    """What state derivation needs to know about a link (a config model fits)."""

    @property
    def id(self) -> str: ...
    @property
    def customer(self) -> str: ...
    @property
    def probes(self) -> Sequence[ProbeSpec]: ...  # its measurements (kernel.config.sites)
    @property
    def quorum(self) -> int: ...  # sites that must see a probe down for it to be down


class Observation(Protocol):
    """What status derivation reads of a sample (a `Sample` fits)."""

    @property
    def probe_id(self) -> str: ...
    @property
    def observed_at(self) -> datetime: ...
    @property
    def outcome(self) -> Outcome: ...
    @property
    def error(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Interval:
    """A status held over [starts_at, ends_at); ends_at None: until further samples."""

    status: LinkStatus
    starts_at: datetime
    ends_at: datetime | None
    error: str | None = None  # of the sample that began it; an outage's first down

    @property
    def duration(self) -> timedelta | None:
        return None if self.ends_at is None else self.ends_at - self.starts_at

    def contains(self, moment: datetime) -> bool:
        return self.starts_at <= moment and (self.ends_at is None or moment < self.ends_at)


@dataclass(frozen=True, slots=True)
class ProbeTimeline:
    """One probe's intervals, as input to `derive_link_intervals`."""

    probe_id: str
    intervals: Sequence[Interval]
    availability: bool = True


def effective_stale_after(interval: timedelta, stale_after: timedelta | None) -> timedelta:
    return 3 * interval if stale_after is None else stale_after


def derive_probe_intervals(
    samples: Iterable[Observation],
    *,
    interval: timedelta,
    confirm: int,
    stale_after: timedelta | None,
    continues_confirmed_run: bool = False,
) -> list[Interval]:
    """A probe's merged status intervals from its samples (any order; of samples at the
    same time the first given counts, as in the database).

    The last interval is the open UNKNOWN from the last sample + stale_after. With
    `continues_confirmed_run`, a run of downs at the very start continues a run already
    confirmed before these samples (used to derive from an anchor inside an outage).
    """
    if confirm < 1:
        raise ValueError("confirm must be at least 1")
    stale = effective_stale_after(interval, stale_after)
    if stale <= timedelta(0):
        raise ValueError("stale_after must be positive")
    ordered = _sorted_unique(samples)
    statuses = _effective_statuses(ordered, confirm, stale, continues_confirmed_run)
    # Each sample's piece joins the one before when it continues it with the same status
    # (as `merge_intervals` would join them), so long steady runs cost no objects.
    merged: list[Interval] = []
    if not ordered:
        return merged
    # The piece being extended (status None: none yet).
    status: LinkStatus | None = None
    starts_at: datetime = ordered[0].observed_at
    ends_at: datetime | None = starts_at
    error: str | None = None
    for index, sample in enumerate(ordered):
        at = sample.observed_at
        held_until = _held_until(sample, stale)
        following = ordered[index + 1].observed_at if index + 1 < len(ordered) else None
        gap = following is None or following > held_until
        end = held_until if gap else following
        if statuses[index] is not status or ends_at != at:
            if status is not None:
                merged.append(Interval(status, starts_at, ends_at, error))
            status, starts_at, error = statuses[index], at, sample.error
        ends_at = end
        if gap:
            if status is not LinkStatus.UNKNOWN:
                merged.append(Interval(status, starts_at, ends_at, error))
                status, starts_at, error = LinkStatus.UNKNOWN, held_until, None
            ends_at = following
    if status is not None:
        merged.append(Interval(status, starts_at, ends_at, error))
    return merged


def _held_until(sample: Observation, stale: timedelta) -> datetime:
    """When the sample's outcome stops holding: after stale_after, or at END_OF_TIME."""
    held_until = later(sample.observed_at, stale)
    if held_until is None:
        if sample.observed_at >= END_OF_TIME:
            raise ValueError(
                f"the sample of probe {sample.probe_id} at {sample.observed_at.isoformat()} "
                "is at the last moment a time can hold, so its outcome holds for no time; "
                "it cannot be right: remove or correct it"
            )
        held_until = END_OF_TIME
    return held_until


def later(moment: datetime, span: timedelta) -> datetime | None:
    """`moment + span`, or None where that is past END_OF_TIME."""
    try:
        return moment + span
    except OverflowError:
        return None


def _sorted_unique(samples: Iterable[Observation]) -> list[Observation]:
    result: list[Observation] = []
    for sample in sorted(samples, key=lambda s: s.observed_at):  # stable: first one wins
        if not result or sample.observed_at != result[-1].observed_at:
            result.append(sample)
    return result


def _effective_statuses(
    samples: Sequence[Observation], confirm: int, stale: timedelta, continues_confirmed_run: bool
) -> list[LinkStatus]:
    """Each sample's status once confirmation is applied to runs of downs."""
    result: list[LinkStatus] = []
    i = 0
    while i < len(samples):
        if samples[i].outcome is not Outcome.DOWN:
            result.append(_STATUS_OF[samples[i].outcome])
            i += 1
            continue
        end = i
        # Downs are consecutive only without an UNKNOWN gap (or another sample) between.
        while (
            end + 1 < len(samples)
            and samples[end + 1].outcome is Outcome.DOWN
            and samples[end + 1].observed_at - samples[end].observed_at <= stale
        ):
            end += 1
        run = end - i + 1
        confirmed = run >= confirm or (i == 0 and continues_confirmed_run)
        result += [LinkStatus.DOWN if confirmed else LinkStatus.UP] * run
        i = end + 1
    return result


def combine_statuses(statuses: Iterable[LinkStatus]) -> LinkStatus:
    """A link's status from its availability probes' statuses at one moment."""
    present = set(statuses)
    for status in (LinkStatus.DOWN, LinkStatus.DEGRADED, LinkStatus.UP):
        if status in present:
            return status
    return LinkStatus.UNKNOWN


def derive_link_intervals(timelines: Iterable[ProbeTimeline], quorum: int = 1) -> list[Interval]:
    """A link's merged status intervals from its measurements' intervals, each probe's
    sites voting with `quorum` (`vote`).

    Only availability probes count. Where none of them has an interval (before the
    first sample of any) the link has none either: that time is not covered.
    """
    # With quorum 1 the vote is the plain combination (a property test checks it): the
    # per-probe grouping is only paid for where sites must agree.
    decide = vote if quorum > 1 else _combined
    counted = [t for t in timelines if t.availability and t.intervals]
    lines = [sorted(t.intervals, key=lambda i: i.starts_at) for t in counted]
    probes = [base_probe_id(t.probe_id) for t in counted]
    points = sorted(
        {i.starts_at for line in lines for i in line}
        | {i.ends_at for line in lines for i in line if i.ends_at is not None}
    )
    positions = [0] * len(lines)
    pieces: list[Interval] = []
    for index, point in enumerate(points):
        following = points[index + 1] if index + 1 < len(points) else None
        statuses: list[tuple[str, LinkStatus]] = []
        for k, line in enumerate(lines):
            while positions[k] < len(line) and not _ends_after(line[positions[k]], point):
                positions[k] += 1
            if positions[k] < len(line) and line[positions[k]].starts_at <= point:
                statuses.append((probes[k], line[positions[k]].status))
        if statuses:
            pieces.append(Interval(decide(statuses, quorum), point, following))
    return merge_intervals(pieces)


def _combined(statuses: Iterable[tuple[str, LinkStatus]], quorum: int) -> LinkStatus:
    return combine_statuses(status for _, status in statuses)


def vote(statuses: Iterable[tuple[str, LinkStatus]], quorum: int) -> LinkStatus:
    """A link's status from its measurements' statuses at one moment, given as (probe,
    status): each probe's sites vote with `quorum` (`site_vote`), then the probes
    combine (`combine_statuses`)."""
    by_probe: dict[str, list[LinkStatus]] = {}
    for probe, status in statuses:
        by_probe.setdefault(probe, []).append(status)
    return combine_statuses(site_vote(seen, quorum) for seen in by_probe.values())


_MEASURED = frozenset({LinkStatus.UP, LinkStatus.DEGRADED, LinkStatus.DOWN})


def site_vote(seen: Sequence[LinkStatus], quorum: int) -> LinkStatus:
    """One probe's status from what its sites see: DOWN when at least `quorum` see it
    down; else UNKNOWN when fewer than `quorum` measure it at all; else DEGRADED when at
    least `quorum` see it degraded or down; else UP. One site and quorum 1: its own."""
    down = sum(status is LinkStatus.DOWN for status in seen)
    if down >= quorum:
        return LinkStatus.DOWN
    if sum(status in _MEASURED for status in seen) < quorum:
        return LinkStatus.UNKNOWN
    if down + sum(status is LinkStatus.DEGRADED for status in seen) >= quorum:
        return LinkStatus.DEGRADED
    return LinkStatus.UP


def _ends_after(interval: Interval, moment: datetime) -> bool:
    return interval.ends_at is None or interval.ends_at > moment


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Join contiguous intervals of equal status; the earlier one's error is kept."""
    merged: list[Interval] = []
    for interval in intervals:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and previous.status is interval.status
            and previous.ends_at == interval.starts_at
        ):
            merged[-1] = replace(previous, ends_at=interval.ends_at)
            continue
        merged.append(interval)
    return merged


def clip_intervals(
    intervals: Iterable[Interval], start: datetime | None, end: datetime | None
) -> list[Interval]:
    """The parts of `intervals` within [start, end) (None: unbounded on that side)."""
    clipped = []
    for interval in intervals:
        starts_at = interval.starts_at if start is None else max(interval.starts_at, start)
        ends_at = interval.ends_at
        if end is not None:
            ends_at = end if ends_at is None else min(ends_at, end)
        if ends_at is None or ends_at > starts_at:
            clipped.append(replace(interval, starts_at=starts_at, ends_at=ends_at))
    return clipped


def splice_intervals(
    old: Sequence[Interval],
    new: Sequence[Interval],
    start: datetime,
    end: datetime | None = None,
    *,
    end_error: str | None = None,
) -> list[Interval]:
    """`old` (sorted, gapless where it matters) with [start, end) replaced by `new`.

    `new` must lie within [start, end). An old interval reaching past `end` is kept from
    `end` on, with `end_error` (the error of the sample at `end`, which begins it there);
    the seams are merged where statuses meet.
    """
    left: list[Interval] = []
    right: list[Interval] = []
    for interval in old:
        if interval.starts_at < start:
            if interval.ends_at is not None and interval.ends_at <= start:
                left.append(interval)
            else:
                left.append(replace(interval, ends_at=start))
        if end is not None and _ends_after(interval, end):
            if interval.starts_at >= end:
                right.append(interval)
            else:
                right.append(replace(interval, starts_at=end, error=end_error))
    return merge_intervals([*left, *new, *right])


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where to re-derive a probe from: a sample at which the derivation can restart."""

    at: datetime
    continues_confirmed_run: bool


def anchor_before(
    newest_first: Sequence[Observation], *, confirm: int, stale: timedelta, complete: bool
) -> Anchor | None:
    """The latest safe anchor among the `confirm` newest samples before a time.

    A sample is a safe anchor when deriving from it alone gives the full derivation's
    intervals from its time on, and leaves the intervals before it unchanged:
    - it is not a down (it ends any run of downs), or
    - it is the first down of its run (its predecessor is missing, not a down, or more
      than stale_after earlier), or
    - it is at least the `confirm`-th down of its run: the run is confirmed whatever
      follows, so derivation restarts from it with `continues_confirmed_run`.
    The newest sample is one of these or its run began within `confirm` samples, so
    `confirm` samples always decide it (`complete`: there are no older samples).
    """
    if not newest_first:
        return None
    newest = newest_first[0]
    if newest.outcome is not Outcome.DOWN:
        return Anchor(newest.observed_at, continues_confirmed_run=False)
    position = 0
    while True:
        later = newest_first[position]
        if position + 1 == confirm:
            # `confirm` chained downs end at the newest: it is in a confirmed run.
            return Anchor(newest.observed_at, continues_confirmed_run=position > 0)
        if position + 1 >= len(newest_first):
            if complete:
                return Anchor(later.observed_at, continues_confirmed_run=False)
            raise AssertionError("fewer than `confirm` samples read but not complete")
        earlier = newest_first[position + 1]
        if earlier.outcome is not Outcome.DOWN or later.observed_at - earlier.observed_at > stale:
            return Anchor(later.observed_at, continues_confirmed_run=False)
        position += 1


def anchor_from(
    before_newest_first: Sequence[Observation],
    oldest_first: Sequence[Observation],
    *,
    confirm: int,
    stale: timedelta,
) -> Observation | None:
    """The earliest safe anchor (see `anchor_before`) among the samples at or after a
    time, given up to `confirm` samples before it; None when they run out first."""
    previous: Observation | None = None
    run = 0  # position of `previous` in its run of downs, capped at confirm
    for sample in reversed(before_newest_first):
        run = _next_run(previous, run, sample, confirm, stale)
        previous = sample
    # The oldest sample read counts as a run start; that can only undercount a run
    # that `confirm` chained downs read already cap at `confirm`, so it is exact.
    for sample in oldest_first:
        run = _next_run(previous, run, sample, confirm, stale)
        if sample.outcome is not Outcome.DOWN or run == 1 or run >= confirm:
            return sample
        previous = sample
    return None


def _next_run(
    previous: Observation | None, run: int, sample: Observation, confirm: int, stale: timedelta
) -> int:
    if sample.outcome is not Outcome.DOWN:
        return 0
    chained = (
        previous is not None
        and previous.outcome is Outcome.DOWN
        and sample.observed_at - previous.observed_at <= stale
    )
    return min(run + 1, confirm) if chained else 1
