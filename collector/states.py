"""Probe and link status intervals: derived exactly from the samples, stored, kept current.

This is the one implementation of DESIGN.md's "SLA semantics" from samples to statuses:

- a sample's outcome holds from its time until the next sample of its probe, but never
  longer than `stale_after`; from `last + stale_after` the probe is UNKNOWN until its next
  sample (so at exactly `last + stale_after` it is UNKNOWN);
- a probe is DOWN only after `confirm` consecutive down samples, from the first of them;
  downs more than `stale_after` apart, or with any other sample between them, are not
  consecutive, and an unconfirmed run of downs counts as UP;
- a degraded sample gives DEGRADED, an unknown sample UNKNOWN;
- a link is DOWN if any availability probe is DOWN, else DEGRADED if one is degraded (the
  thresholds are the link's, so one probe crossing them is what the customer sees), else
  UP if one is UP, else UNKNOWN.

`derive_probe_intervals` and `derive_link_intervals` are pure and exact (tz-aware
datetimes, no floats). `StateDeriver` keeps the stored `probe_states` / `link_states` rows
equal to those functions over all stored samples, re-deriving only from a safe anchor
before each batch's earliest sample; `rebuild_states` recomputes a range; the query
functions read the rows for the SLA engine and the portal. `collector.status` derives
the current status with the same functions. A probe whose derivation fails (a stored
sample no interval can hold, any exception but a database outage) is left out and
recorded in `state_failures`; it never stops the other probes and links from being derived.

Nothing here reads a clock or computes availability over a window (that is `sla/`), and
nothing writes samples. A rewrite that reaches the live edge also writes the outbox events
of outages beginning and ending there (`collector.outbox`), in its own transaction, judged
at the link's frontier (its newest sample), never from the projection beyond it. The
stored rows are a cache of a pure function of the samples: any rewrite must leave them
equal to a full rebuild.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.outbox import record_events
from collector.queries import query
from linkwatch.domain import Event, EventKind, LinkStatus, Outcome, Sample
from linkwatch.errors import DatabaseError
from linkwatch.formatting import count_of
from linkwatch.logs import quoted

logger = logging.getLogger(__name__)

# The advisory lock class for "rewriting one link's intervals" ("LWS"); the object id is
# hashtext(link_id). Two-key advisory locks never collide with migrate.py's bigint key.
_LOCK_CLASS = 0x4C5753

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
    def probes(self) -> Sequence[ProbeSpec]: ...


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


class _Observed(NamedTuple):
    """A stored sample as derivation reads it: a tuple, cheap for a long history."""

    link_id: str
    probe_id: str
    observed_at: datetime
    outcome: Outcome
    error: str | None


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


@dataclass(frozen=True, slots=True)
class IncidentProbe:
    """A probe that saw an outage: when it went DOWN and the error it reported then."""

    probe_id: str
    starts_at: datetime
    error: str | None


@dataclass(frozen=True, slots=True)
class Incident:
    """One link outage (a DOWN link interval), unclipped, with every probe that was DOWN
    during it (an informational, non-availability probe too), first to see it first."""

    link_id: str
    starts_at: datetime
    ends_at: datetime | None  # None: running, a probe's last sample is a confirmed down
    seen_until: datetime | None  # the stored end; while running, when its data goes stale
    probes: tuple[IncidentProbe, ...]

    @property
    def running(self) -> bool:
        return self.ends_at is None

    @property
    def duration(self) -> timedelta | None:
        """How long it lasted; None while running (then `now - starts_at`)."""
        return None if self.ends_at is None else self.ends_at - self.starts_at


@dataclass(frozen=True, slots=True)
class LinkRebuild:
    """One link's intervals within the rebuilt range, clipped to it, before and after."""

    link_id: str
    before: tuple[Interval, ...]
    after: tuple[Interval, ...]
    probe_intervals_removed: int  # probe intervals in the range (clipped) that went away
    probe_intervals_added: int

    @property
    def changed(self) -> bool:
        return (
            self.before != self.after
            or self.probe_intervals_removed > 0
            or self.probe_intervals_added > 0
        )

    def time_in(self, status: LinkStatus, *, after: bool = True) -> timedelta:
        """Total time in `status` within the range, after (or before) the rebuild."""
        return _time_in(self.after if after else self.before, status)


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What `rebuild_states` changed, per link, within [start, end)."""

    start: datetime
    end: datetime
    links: tuple[LinkRebuild, ...]
    samples_read: int

    @property
    def changed(self) -> tuple[LinkRebuild, ...]:
        return tuple(link for link in self.links if link.changed)

    def lines(self) -> list[str]:
        """A human summary: one line for the range, one per link that changed."""
        out = [
            f"rebuilt states from {self.start.isoformat()} to {self.end.isoformat()}: "
            f"{count_of(len(self.links), 'link')}, {len(self.changed)} changed, "
            f"{count_of(self.samples_read, 'sample')} read"
        ]
        for link in self.changed:
            parts = [
                f"{status.value} {_time_in(link.before, status)} -> {_time_in(link.after, status)}"
                for status in (LinkStatus.DOWN, LinkStatus.UNKNOWN, LinkStatus.DEGRADED)
                if _time_in(link.before, status) != _time_in(link.after, status)
            ]
            out.append(
                f"  {link.link_id}: link intervals {len(link.before)} -> {len(link.after)}"
                + (f", {', '.join(parts)}" if parts else "")
                + f"; probe intervals -{link.probe_intervals_removed}"
                f" +{link.probe_intervals_added}"
            )
        return out


def _time_in(intervals: Iterable[Interval], status: LinkStatus) -> timedelta:
    total = timedelta(0)
    for interval in intervals:
        length = interval.duration
        if interval.status is status and length is not None:
            total += length
    return total


# --- pure derivation -----------------------------------------------------------------


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
    held_until = _later(sample.observed_at, stale)
    if held_until is None:
        if sample.observed_at >= END_OF_TIME:
            raise ValueError(
                f"the sample of probe {sample.probe_id} at {sample.observed_at.isoformat()} "
                "is at the last moment a time can hold, so its outcome holds for no time; "
                "it cannot be right: remove or correct it"
            )
        held_until = END_OF_TIME
    return held_until


def _later(moment: datetime, span: timedelta) -> datetime | None:
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


def derive_link_intervals(timelines: Iterable[ProbeTimeline]) -> list[Interval]:
    """A link's merged status intervals from its probes' intervals.

    Only availability probes count. Where none of them has an interval (before the
    first sample of any) the link has none either: that time is not covered.
    """
    lines = [
        sorted(t.intervals, key=lambda i: i.starts_at)
        for t in timelines
        if t.availability and t.intervals
    ]
    points = sorted(
        {i.starts_at for line in lines for i in line}
        | {i.ends_at for line in lines for i in line if i.ends_at is not None}
    )
    positions = [0] * len(lines)
    pieces: list[Interval] = []
    for index, point in enumerate(points):
        following = points[index + 1] if index + 1 < len(points) else None
        statuses = []
        for k, line in enumerate(lines):
            while positions[k] < len(line) and not _ends_after(line[positions[k]], point):
                positions[k] += 1
            if positions[k] < len(line) and line[positions[k]].starts_at <= point:
                statuses.append(line[positions[k]].status)
        if statuses:
            pieces.append(Interval(combine_statuses(statuses), point, following))
    return merge_intervals(pieces)


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
class _Anchor:
    """Where to re-derive a probe from: a sample at which the derivation can restart."""

    at: datetime
    continues_confirmed_run: bool


def _anchor_before(
    newest_first: Sequence[Observation], *, confirm: int, stale: timedelta, complete: bool
) -> _Anchor | None:
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
        return _Anchor(newest.observed_at, continues_confirmed_run=False)
    position = 0
    while True:
        later = newest_first[position]
        if position + 1 == confirm:
            # `confirm` chained downs end at the newest: it is in a confirmed run.
            return _Anchor(newest.observed_at, continues_confirmed_run=position > 0)
        if position + 1 >= len(newest_first):
            if complete:
                return _Anchor(later.observed_at, continues_confirmed_run=False)
            raise AssertionError("fewer than `confirm` samples read but not complete")
        earlier = newest_first[position + 1]
        if earlier.outcome is not Outcome.DOWN or later.observed_at - earlier.observed_at > stale:
            return _Anchor(later.observed_at, continues_confirmed_run=False)
        position += 1


def _anchor_from(
    before_newest_first: Sequence[Observation],
    oldest_first: Sequence[Observation],
    *,
    confirm: int,
    stale: timedelta,
) -> Observation | None:
    """The earliest safe anchor (see `_anchor_before`) among the samples at or after a
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


# --- incremental maintenance ---------------------------------------------------------

_Key = tuple[str, str]  # (link_id, probe_id)


@dataclass
class _Work:
    """One probe to re-derive: from the anchor before `bound`, up to the anchor at or
    after `until` (None: to the end of its samples)."""

    link: LinkSpec
    probe: ProbeSpec
    bound: datetime
    until: datetime | None = None
    # Stop at the anchor after `until` even where no stored interval reaches it, leaving
    # the rest for the next slice (a first derivation of a long history, in slices).
    slice_only: bool = False
    # Filled in as the work proceeds:
    start: datetime | None = None  # where the new intervals begin to replace the old
    grounded: bool = False  # no samples before `start`: the timeline begins there
    continues_confirmed_run: bool = False
    end: datetime | None = None  # where they stop (None: to the end)
    end_error: str | None = None
    samples: list[_Observed] = field(default_factory=list)

    @property
    def stale(self) -> timedelta:
        return effective_stale_after(self.probe.interval, self.probe.stale_after)


@dataclass
class _Pass:
    """What one rewrite transaction did, for logs and reports."""

    samples_read: int = 0
    probe_rows_deleted: int = 0
    probe_rows_inserted: int = 0
    link_rows_deleted: int = 0
    link_rows_inserted: int = 0
    transitions: list[tuple[str, Interval]] = field(default_factory=list)
    # Links whose rewrite reached the end of their timeline, with their latest status.
    live_edges: list[tuple[LinkSpec, Interval]] = field(default_factory=list)
    events: int = 0  # outbox events written

    def absorb(self, other: _Pass) -> None:
        """Count `other`'s work in this one (several rewrites reported as one)."""
        self.samples_read += other.samples_read
        self.probe_rows_deleted += other.probe_rows_deleted
        self.probe_rows_inserted += other.probe_rows_inserted
        self.link_rows_deleted += other.link_rows_deleted
        self.link_rows_inserted += other.link_rows_inserted
        self.transitions += other.transitions
        self.live_edges += other.live_edges
        self.events += other.events


@dataclass(frozen=True, slots=True)
class StateFailure:
    """A probe whose intervals cannot be derived, as a `StateDeriver` recorded it."""

    link_id: str
    probe_id: str
    since: datetime  # its first failure since it last derived
    last_failed_at: datetime
    error: str  # one line: the exception's type and message


def _database_outage(exc: BaseException) -> bool:
    """Whether a failure is the database's, to be retried with the whole batch, rather
    than one that the stored data causes and would cause again.

    A DatabaseError is an outage unless psycopg refused a value (DataError,
    IntegrityError): that is a row that fails every time, like any other exception."""
    if not isinstance(exc, DatabaseError | psycopg.OperationalError | psycopg.InterfaceError):
        return False
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, psycopg.DataError | psycopg.IntegrityError):
            return False
        cause = cause.__cause__
    return True


def _failure_text(exc: BaseException) -> str:
    """`exc` as one printable line (a terminal shows it, PostgreSQL stores it: no NUL,
    no escape sequence), cut at 500 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if not text.isprintable():
        text = "".join(
            char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
            for char in text
        )
    return text if len(text) <= 500 else text[:497] + "..."


class StateDeriver:
    """Keeps the stored intervals of the configured links equal to a full derivation.

    Call `samples_stored(batch)` after every committed batch of samples, live or
    replayed, in any order, late or duplicated; and `catch_up()` once at start-up. Each
    call re-derives only what the batch can change: for each probe, from the latest
    safe anchor before its earliest new sample (at most `confirm` samples back) to its
    newest sample, then the link over the same range, in one transaction per call that
    holds an advisory lock per link. Samples of links or probes not configured are ignored.

    No stored sample stops the others from being derived. When a derivation fails other
    than by a database outage (any exception: a sample no interval can hold, a bug), the
    links are derived one by one, and a link's probes one by one, so that only the probe
    that fails alone is left out. Its failure is logged once, recorded in
    `state_failures` (see `state_failures()`), and the probe is derived on its own with
    each batch that brings samples of it, from where it first failed, until it succeeds
    and the record is removed: at its probe's cadence, never in a loop of its own.
    """

    def __init__(
        self,
        db: Database,
        links: Sequence[LinkSpec],
        *,
        catch_up_slice: timedelta = timedelta(days=7),
    ) -> None:
        if catch_up_slice <= timedelta(0):
            raise ValueError("catch_up_slice must be positive")
        self._db = db
        self._catch_up_slice = catch_up_slice
        self._specs: dict[_Key, tuple[LinkSpec, ProbeSpec]] = {
            (link.id, probe.id): (link, probe) for link in links for probe in link.probes
        }
        # Earliest sample per probe of calls that failed: the next call derives them too.
        self._pending: dict[_Key, datetime] = {}
        # Probes that failed in this process, and from where they are still to derive.
        self._failing: dict[_Key, datetime] = {}
        # Probes with a row in state_failures, as far as this deriver knows (None: not
        # read yet): another process, or an earlier run, may have recorded them.
        self._recorded: set[_Key] | None = None
        self.ignored = 0  # samples of links or probes that are not configured

    def update(self, links: Sequence[LinkSpec]) -> None:
        """Take a new configuration (a reload): from the next batch on, added links and
        probes get states, changed probes are derived by their new rules (the stored
        history stays as its own rules made it), and removed ones are ignored."""
        self._specs = {
            (link.id, probe.id): (link, probe) for link in links for probe in link.probes
        }
        self._pending = {key: at for key, at in self._pending.items() if key in self._specs}
        self._failing = {key: at for key, at in self._failing.items() if key in self._specs}

    @property
    def failing(self) -> frozenset[tuple[str, str]]:
        """(link id, probe id) of the probes that failed to derive in this process."""
        return frozenset(self._failing)

    async def samples_stored(self, batch: Sequence[Sample]) -> None:
        """Re-derive what `batch` (already committed) can change.

        Raises DatabaseError when the database fails; the batch is then kept and derived
        with the next call, so a writer may also simply call again with the same batch.
        Any other failure is confined to the probes it comes from (see the class).
        """
        earliest: dict[_Key, datetime] = {}
        for sample in batch:
            key = (sample.link_id, sample.probe_id)
            if key not in self._specs:
                self.ignored += 1
                logger.debug("sample of an unconfigured probe ignored link=%s probe=%s", *key)
                continue
            if key not in earliest or sample.observed_at < earliest[key]:
                earliest[key] = sample.observed_at
        await self.changed_from(earliest)

    async def changed_from(self, changes: dict[_Key, datetime]) -> None:
        """Re-derive each (link, probe) of `changes` from its time on: samples there were
        stored, replaced or deleted. Failures as in `samples_stored`."""
        earliest, self._pending = self._pending, {}
        for key, at in changes.items():
            if key in self._specs and (key not in earliest or at < earliest[key]):
                earliest[key] = at
        if not earliest:
            return
        for key, bound in self._failing.items():
            if key in earliest and bound < earliest[key]:
                earliest[key] = bound
        try:
            done = await self._derive(earliest)
        except BaseException:
            for key, bound in earliest.items():
                if key not in self._pending or bound < self._pending[key]:
                    self._pending[key] = bound
            raise
        for link_id, interval in done.transitions:
            logger.info(
                "link state changed link=%s status=%s since=%s",
                link_id,
                interval.status.value,
                interval.starts_at.isoformat(),
            )
        logger.debug(
            "states derived probes=%d samples_read=%d probe_rows=-%d+%d link_rows=-%d+%d events=%d",
            len(earliest),
            done.samples_read,
            done.probe_rows_deleted,
            done.probe_rows_inserted,
            done.link_rows_deleted,
            done.link_rows_inserted,
            done.events,
        )

    async def _derive(self, earliest: dict[_Key, datetime]) -> _Pass:
        """Derive the probes from their bounds: those not known to fail in one rewrite,
        each link with a failing probe in one of its own."""
        recorded = await self._recorded_failures()
        suspects = self._failing.keys() | recorded
        groups = [{key: bound for key, bound in earliest.items() if key not in suspects}]
        per_link: dict[str, dict[_Key, datetime]] = defaultdict(dict)
        for key, bound in earliest.items():
            if key in suspects:
                per_link[key[0]][key] = bound
        groups += per_link.values()
        done = _Pass()
        for group in groups:
            if group:
                await self._derive_isolating(group, done)
        return done

    async def _derive_isolating(self, group: dict[_Key, datetime], done: _Pass) -> None:
        works = [_Work(*self._specs[key], bound=bound) for key, bound in group.items()]
        try:
            result = await _rewrite(self._db, works)
        except Exception as exc:
            if _database_outage(exc):
                raise
            parts = _split(group)
            if not parts:
                [(key, bound)] = group.items()
                await self._failed(key, bound, exc)
                return
            logger.debug(
                "state derivation failed, deriving its parts one by one probes=%d cause=%s",
                len(group),
                quoted(_failure_text(exc)),
            )
            for part in parts:
                await self._derive_isolating(part, done)
            return
        done.absorb(result)
        await self._derived(list(group))

    async def _recorded_failures(self) -> set[_Key]:
        if self._recorded is None:
            self._recorded = {(f.link_id, f.probe_id) for f in await state_failures(self._db)}
        return self._recorded

    async def _failed(self, key: _Key, bound: datetime, exc: Exception) -> None:
        """Record that `key` cannot be derived from `bound`; log it once."""
        error = _failure_text(exc)
        async with self._db.connection() as conn:
            await conn.execute(
                query("state_failures_set"), {"link_id": key[0], "probe_id": key[1], "error": error}
            )
        first = key not in self._failing
        self._failing[key] = min(bound, self._failing.get(key, bound))
        (await self._recorded_failures()).add(key)
        if first:
            logger.error(
                "link states cannot be derived, its other probes and links go on; see "
                "linkwatch db stats link=%s probe=%s from=%s cause=%s",
                quoted(key[0]),
                quoted(key[1]),
                bound.isoformat(),
                quoted(error, limit=500),
            )
            logger.debug("state derivation failure link=%s probe=%s", *key, exc_info=exc)
        else:
            logger.debug(
                "link states still cannot be derived link=%s probe=%s cause=%s",
                quoted(key[0]),
                quoted(key[1]),
                quoted(error, limit=500),
            )

    async def _derived(self, keys: Sequence[_Key]) -> None:
        """`keys` derived: any failure recorded of them is over."""
        recorded = await self._recorded_failures()
        over = [key for key in keys if key in self._failing or key in recorded]
        if not over:
            return
        async with self._db.connection() as conn:
            await conn.execute(
                query("state_failures_clear"),
                {"link_ids": [k[0] for k in over], "probe_ids": [k[1] for k in over]},
            )
        for key in over:
            self._failing.pop(key, None)
            recorded.discard(key)
            logger.info(
                "link states derived again link=%s probe=%s", quoted(key[0]), quoted(key[1])
            )

    async def catch_up(self) -> int:
        """Derive each probe's samples newer than the newest its intervals include (all
        of them the first time); return how many probes needed it.

        Covers samples committed while no deriver ran: by an older version, a demo history
        load, or before a process was killed between a write and its `samples_stored`
        (late samples older than the progress mark that were never announced are not
        found: `rebuild_states` recomputes a range). Safe while live batches arrive.
        A probe that fails is recorded and left for the live batches (see the class);
        the failures recorded of probes no longer configured are dropped.
        """
        keys = list(self._specs)
        async with self._db.connection() as conn:
            await conn.execute(
                query("state_failures_forget_unconfigured"),
                {"link_ids": [k[0] for k in keys], "probe_ids": [k[1] for k in keys]},
            )
        self._recorded = None  # read again below
        await self._recorded_failures()
        if not keys:
            return 0
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(
                query("states_underived"),
                {"link_ids": [k[0] for k in keys], "probe_ids": [k[1] for k in keys]},
            )
            rows = await cur.fetchall()
        behind = {keys[ord_ - 1]: first for ord_, first in rows if first is not None}
        for key, first in behind.items():
            # A first derivation of a long history goes in slices, a transaction each,
            # so memory stays bounded; progress is kept per slice, so a restart resumes.
            bound: datetime | None = first
            try:
                while bound is not None:
                    work = _Work(
                        *self._specs[key],
                        bound=bound,
                        # A slice reaching past END_OF_TIME is the last one: to the end.
                        until=_later(bound, self._catch_up_slice),
                        slice_only=True,
                    )
                    await _rewrite(self._db, [work])
                    bound = work.end
            except Exception as exc:
                if _database_outage(exc) or bound is None:
                    raise
                await self._failed(key, bound, exc)
                continue
            await self._derived([key])
        if behind:
            logger.info("states caught up probes=%d", len(behind))
        return len(behind)


def _split(group: dict[_Key, datetime]) -> list[dict[_Key, datetime]]:
    """A failed group's parts to derive alone: its links, or one link's probes."""
    links = sorted({key[0] for key in group})
    if len(links) > 1:
        return [{k: b for k, b in group.items() if k[0] == link} for link in links]
    if len(group) > 1:
        return [{key: bound} for key, bound in group.items()]
    return []


async def state_failures(db: Database) -> list[StateFailure]:
    """The probes whose intervals cannot be derived now, oldest failure first."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("state_failures_select"))
        return [StateFailure(*row) for row in await cur.fetchall()]


async def rebuild_states(
    db: Database,
    links: Sequence[LinkSpec],
    start: datetime,
    end: datetime,
    *,
    chunk: timedelta = timedelta(days=7),
) -> RebuildReport:
    """Recompute from the samples every interval of `links` overlapping [start, end).

    The rewrite reaches from the safe anchor before `start` to the safe anchor at or
    after `end` (to the end of the samples where stored intervals do not reach that far),
    one `chunk` at a time so that memory stays bounded; each chunk is one transaction
    under the links' locks, so it is safe while the daemon runs.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    if chunk <= timedelta(0):
        raise ValueError("chunk must be positive")
    link_ids = [link.id for link in links]
    before_links = await link_intervals(db, link_ids, start, end)
    before_probes = await _probe_intervals(db, links, start, end)
    samples_read = 0
    for link in links:
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(chunk_start + chunk, end)
            works = [
                _Work(link, probe, bound=chunk_start, until=chunk_end) for probe in link.probes
            ]
            if works:
                samples_read += (await _rewrite(db, works)).samples_read
            chunk_start = chunk_end
    after_links = await link_intervals(db, link_ids, start, end)
    after_probes = await _probe_intervals(db, links, start, end)
    report = _rebuild_report(
        links, start, end, samples_read, (before_links, before_probes), (after_links, after_probes)
    )
    for line in report.lines():
        logger.info("%s", line.strip())
    return report


_Stored = tuple[dict[str, list[Interval]], dict[str, set[tuple[str, Interval]]]]


def _rebuild_report(
    links: Sequence[LinkSpec],
    start: datetime,
    end: datetime,
    samples_read: int,
    before: _Stored,
    after: _Stored,
) -> RebuildReport:
    return RebuildReport(
        start=start,
        end=end,
        samples_read=samples_read,
        links=tuple(
            LinkRebuild(
                link_id=link.id,
                before=tuple(before[0][link.id]),
                after=tuple(after[0][link.id]),
                probe_intervals_removed=len(before[1][link.id] - after[1][link.id]),
                probe_intervals_added=len(after[1][link.id] - before[1][link.id]),
            )
            for link in links
        ),
    )


# How much of a history one pass of `derive_within` derives.
DERIVE_SLICE = timedelta(days=7)


async def derive_within(
    conn: psycopg.AsyncConnection[Any],
    links: Sequence[LinkSpec],
    earliest: Mapping[tuple[str, str], datetime],
    *,
    per_slice: Mapping[tuple[str, str], int] | None = None,
    slice_: timedelta = DERIVE_SLICE,
    budget: int = 50_000,
) -> int:
    """Re-derive, in the caller's transaction on `conn`, each (link, probe) of `earliest`
    from the safe anchor before its time to the end of its samples; return the samples
    read. For samples the caller has just written in that transaction (an import), so
    that they and their states commit together or not at all. Pairs not among `links`
    are ignored.

    Goes a slice of time at a time, so memory stays bounded however long the history,
    and many links a pass, so many short histories cost few statements: links are taken
    together while their probes' expected samples a slice (`per_slice`, unknown: the
    whole budget) stay within `budget`, and a link expecting more than the budget alone
    goes in shorter slices. A link's probes go together, from the earliest
    of their times, so that each pass derives the link from probes derived alike.
    """
    specs = {(link.id, probe.id): (link, probe) for link in links for probe in link.probes}
    keys = [k for k in earliest if k in specs]
    # Every link's lock at once, in the one global order (a slice's own locking of a
    # link already held is then a no-op): taken one by one, while a live batch takes its
    # own set at once, two transactions could each hold what the other waits for.
    link_ids = sorted({link_id for link_id, _ in keys})
    await conn.execute(
        query("states_lock_links"), {"lock_class": _LOCK_CLASS, "link_ids": link_ids}
    )
    probes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in keys:
        probes[key[0]].append(key)
    weight = {
        link_id: sum((per_slice or {}).get(key, budget) for key in keys_)
        for link_id, keys_ in probes.items()
    }
    # A link denser than the budget goes in shorter slices, down to a minute.
    span = {
        link_id: max(slice_ * min(1.0, budget / weight[link_id]), timedelta(minutes=1))
        for link_id in probes
    }
    # (link, where its next slice begins), in link order.
    pending = deque((link_id, min(earliest[k] for k in probes[link_id])) for link_id in link_ids)
    read = 0
    while pending:
        group = [pending.popleft()]
        total = weight[group[0][0]]
        while pending and total + weight[pending[0][0]] <= budget:
            group.append(pending.popleft())
            total += weight[group[-1][0]]
        works = [
            _Work(*specs[key], bound=bound, until=bound + span[link_id], slice_only=True)
            for link_id, bound in group
            for key in probes[link_id]
        ]
        read += (await _rewrite_on(conn, works)).samples_read
        ends: dict[str, list[datetime | None]] = defaultdict(list)
        for work in works:
            ends[work.link.id].append(work.end)
        for link_id, _ in group:
            # The link goes on from the earliest place one of its probes stopped.
            stops = [end for end in ends[link_id] if end is not None]
            if stops:
                pending.append((link_id, min(stops)))
    return read


async def rebuild_within(
    conn: psycopg.AsyncConnection[Any],
    links: Sequence[LinkSpec],
    start: datetime,
    end: datetime,
    derive: Callable[[], Awaitable[int]],
) -> RebuildReport:
    """What `derive()` (a `derive_within` on `conn`) changes in `links`' intervals within
    [start, end), in the caller's transaction: as `rebuild_states` reports it."""
    link_ids = [link.id for link in links]
    before_links = await _link_intervals_on(conn, link_ids, start, end)
    before_probes = _per_link(links, await _probe_intervals_on(conn, links, start, end))
    samples_read = await derive()
    after_links = await _link_intervals_on(conn, link_ids, start, end)
    after_probes = _per_link(links, await _probe_intervals_on(conn, links, start, end))
    return _rebuild_report(
        links, start, end, samples_read, (before_links, before_probes), (after_links, after_probes)
    )


async def _rewrite(db: Database, works: list[_Work]) -> _Pass:
    """Re-derive `works` and their links in one transaction, under the links' locks."""
    async with db.connection() as conn, conn.transaction():
        return await _rewrite_on(conn, works)


async def _rewrite_on(conn: psycopg.AsyncConnection[Any], works: list[_Work]) -> _Pass:
    """`_rewrite` in the transaction that `conn` is in; its locks last until that ends."""
    done = _Pass()
    cur = conn.cursor(row_factory=tuple_row)
    link_ids = sorted({w.link.id for w in works})
    await cur.execute(query("states_lock_links"), {"lock_class": _LOCK_CLASS, "link_ids": link_ids})
    # Everything below is read after the locks are held (READ COMMITTED: each statement
    # sees all commits so far), so the previous rewrite of these links and every batch
    # committed before it are included.
    await _find_starts(cur, works)
    await _find_ends(cur, works)
    await _read_samples(cur, works)
    done.samples_read = sum(len(w.samples) for w in works)
    await _rewrite_probes(cur, works, done)
    await _rewrite_links(cur, works, done)
    await _record_progress(cur, works)
    return done


def _pairs(works: Sequence[_Work]) -> dict[str, list[str]]:
    return {"link_ids": [w.link.id for w in works], "probe_ids": [w.probe.id for w in works]}


def _sample(work: _Work, observed_at: datetime, outcome: str, error: str | None) -> _Observed:
    return _Observed(work.link.id, work.probe.id, observed_at, _OUTCOME_OF[outcome], error)


_OUTCOME_OF = {o.value: o for o in Outcome}


async def _samples_per_work(
    cur: psycopg.AsyncCursor[tuple[Any, ...]],
    name: str,
    works: Sequence[_Work],
    params: dict[str, Any],
) -> list[list[_Observed]]:
    await cur.execute(query(name), {**_pairs(works), **params})
    found: list[list[_Observed]] = [[] for _ in works]
    for ord_, observed_at, outcome, error in await cur.fetchall():
        found[ord_ - 1].append(_sample(works[ord_ - 1], observed_at, outcome, error))
    return found


async def _find_starts(cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work]) -> None:
    limits = [max(1, w.probe.confirm) for w in works]
    before = await _samples_per_work(
        cur, "states_samples_before", works, {"before": [w.bound for w in works], "limits": limits}
    )
    for work, found, limit in zip(works, before, limits, strict=True):
        anchor = _anchor_before(
            found, confirm=work.probe.confirm, stale=work.stale, complete=len(found) < limit
        )
        if anchor is None:
            # Nothing earlier: the probe's timeline (re)starts at its first sample.
            work.start, work.continues_confirmed_run, work.grounded = work.bound, False, True
        else:
            work.start, work.continues_confirmed_run = anchor.at, anchor.continues_confirmed_run


async def _find_ends(cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work]) -> None:
    bounded = [w for w in works if w.until is not None]
    if not bounded:
        return
    limits = [max(1, w.probe.confirm) for w in bounded]
    until = [w.until for w in bounded]
    before = await _samples_per_work(
        cur, "states_samples_before", bounded, {"before": until, "limits": limits}
    )
    after = await _samples_per_work(
        cur, "states_samples_from", bounded, {"from": until, "limits": limits}
    )
    candidates: list[Observation | None] = [
        _anchor_from(b, a, confirm=w.probe.confirm, stale=w.stale)
        for w, b, a in zip(bounded, before, after, strict=True)
    ]
    # Stopping at an anchor keeps the stored intervals after it, so that is only right
    # where stored intervals reach it; otherwise derive to the end of the samples.
    at = [
        c.observed_at if c is not None else w.until
        for w, c in zip(bounded, candidates, strict=True)
    ]
    await cur.execute(query("states_probe_touching"), {**_pairs(bounded), "from": at, "to": at})
    covered = set()
    for ord_, status, starts_at, ends_at, error in await cur.fetchall():
        if Interval(LinkStatus(status), starts_at, ends_at, error).contains(at[ord_ - 1]):
            covered.add(ord_ - 1)
    for index, (work, candidate) in enumerate(zip(bounded, candidates, strict=True)):
        if candidate is not None and (index in covered or work.slice_only):
            work.end, work.end_error = candidate.observed_at, candidate.error


async def _read_samples(cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work]) -> None:
    found = await _samples_per_work(
        cur,
        "states_samples_range",
        works,
        {"from": [w.start for w in works], "to": [w.end for w in works]},
    )
    for work, samples in zip(works, found, strict=True):
        work.samples = samples


async def _rewrite_probes(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work], done: _Pass
) -> None:
    live = [w for w in works if w.samples]  # no samples: nothing to derive, keep the rows
    if not live:
        return
    await cur.execute(
        query("states_probe_touching"),
        {**_pairs(live), "from": [w.start for w in live], "to": [w.end for w in live]},
    )
    old: list[list[Interval]] = [[] for _ in live]
    for ord_, status, starts_at, ends_at, error in await cur.fetchall():
        old[ord_ - 1].append(Interval(LinkStatus(status), starts_at, ends_at, error))
    deletes: list[tuple[str, str, datetime]] = []
    inserts: list[tuple[str, str, Interval]] = []
    for work, stored in zip(live, old, strict=True):
        assert work.start is not None
        derived = derive_probe_intervals(
            work.samples,
            interval=work.probe.interval,
            confirm=work.probe.confirm,
            stale_after=work.probe.stale_after,
            continues_confirmed_run=work.continues_confirmed_run,
        )
        new = clip_intervals(derived, work.start, work.end)
        result = splice_intervals(stored, new, work.start, work.end, end_error=work.end_error)
        gone, added = _diff(stored, result)
        deletes += [(work.link.id, work.probe.id, i.starts_at) for i in gone]
        inserts += [(work.link.id, work.probe.id, i) for i in added]
    if deletes:
        await cur.execute(
            query("states_probe_delete"),
            {
                "link_ids": [d[0] for d in deletes],
                "probe_ids": [d[1] for d in deletes],
                "starts_at": [d[2] for d in deletes],
            },
        )
    if inserts:
        await cur.execute(
            query("states_probe_insert"),
            {
                "link_ids": [i[0] for i in inserts],
                "probe_ids": [i[1] for i in inserts],
                "statuses": [i[2].status.value for i in inserts],
                "starts_at": [i[2].starts_at for i in inserts],
                "ends_at": [i[2].ends_at for i in inserts],
                "errors": [i[2].error for i in inserts],
            },
        )
    done.probe_rows_deleted += len(deletes)
    done.probe_rows_inserted += len(inserts)


async def _rewrite_links(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work], done: _Pass
) -> None:
    # Link status is a pointwise function of its availability probes' statuses, so the
    # range every rewritten availability probe spans is all that can have changed.
    ranges: dict[str, tuple[datetime, datetime | None]] = {}
    for work in works:
        if not work.samples or not work.probe.availability:
            continue
        assert work.start is not None
        if work.link.id in ranges:
            start, end = ranges[work.link.id]
            start = min(start, work.start)
            end = None if end is None or work.end is None else max(end, work.end)
        else:
            start, end = work.start, work.end
        ranges[work.link.id] = (start, end)
    if not ranges:
        return
    links = {w.link.id: w.link for w in works}
    order = sorted(ranges)
    probes = [
        (link_id, probe.id)
        for link_id in order
        for probe in links[link_id].probes
        if probe.availability
    ]
    await cur.execute(
        query("states_probe_overlapping"),
        {
            "link_ids": [p[0] for p in probes],
            "probe_ids": [p[1] for p in probes],
            "from": [ranges[p[0]][0] for p in probes],
            "to": [ranges[p[0]][1] for p in probes],
        },
    )
    timelines: dict[_Key, list[Interval]] = defaultdict(list)
    for ord_, status, starts_at, ends_at, error in await cur.fetchall():
        timelines[probes[ord_ - 1]].append(Interval(LinkStatus(status), starts_at, ends_at, error))
    await cur.execute(
        query("states_link_touching"),
        {
            "link_ids": order,
            "from": [ranges[i][0] for i in order],
            "to": [ranges[i][1] for i in order],
        },
    )
    old: dict[str, list[Interval]] = defaultdict(list)
    for ord_, status, starts_at, ends_at in await cur.fetchall():
        old[order[ord_ - 1]].append(Interval(LinkStatus(status), starts_at, ends_at))
    frontiers = await _frontiers(cur, [p for p in probes if ranges[p[0]][1] is None])
    deletes: list[tuple[str, datetime]] = []
    inserts: list[tuple[str, Interval]] = []
    for link_id in order:
        start, end = ranges[link_id]
        new = derive_link_intervals(
            ProbeTimeline(p.id, clip_intervals(timelines[(link_id, p.id)], start, end))
            for p in links[link_id].probes
            if p.availability
        )
        stored = old[link_id]
        result = splice_intervals(stored, new, start, end)
        gone, added = _diff(stored, result)
        deletes += [(link_id, i.starts_at) for i in gone]
        inserts += [(link_id, i) for i in added]
        frontier = frontiers.get(link_id)
        latest_after = None if frontier is None else _interval_at(result, frontier)
        if frontier is not None and latest_after is not None:
            done.live_edges.append((links[link_id], latest_after))
            latest_before = _interval_at(stored, frontier)
            if latest_before is None or latest_before.status is not latest_after.status:
                done.transitions.append((link_id, latest_after))
    if deletes:
        await cur.execute(
            query("states_link_delete"),
            {"link_ids": [d[0] for d in deletes], "starts_at": [d[1] for d in deletes]},
        )
    if inserts:
        await cur.execute(
            query("states_link_insert"),
            {
                "link_ids": [i[0] for i in inserts],
                "statuses": [i[1].status.value for i in inserts],
                "starts_at": [i[1].starts_at for i in inserts],
                "ends_at": [i[1].ends_at for i in inserts],
            },
        )
    done.link_rows_deleted += len(deletes)
    done.link_rows_inserted += len(inserts)
    await _outage_events(cur, done)


async def _outage_events(cur: psycopg.AsyncCursor[tuple[Any, ...]], done: _Pass) -> None:
    """Write link-down and link-recovered events for the links whose latest status now
    begins or ends an outage, in the rewrite's transaction and under its locks.

    `link_alerts` holds the outages announced and not yet over, so each outage gives one
    down and one recovery however often it is re-derived; a history loaded or rebuilt in
    the past announces nothing, and only the status at the link's frontier counts. A
    link the monitor cannot see (UNKNOWN) neither recovers nor goes down here.
    """
    if not done.live_edges:
        return
    await cur.execute(
        query("link_alerts_select"), {"link_ids": [link.id for link, _ in done.live_edges]}
    )
    announced: dict[str, datetime] = dict(await cur.fetchall())
    events: list[Event] = []
    starts: dict[str, datetime] = {}
    ended: list[tuple[LinkSpec, datetime, datetime]] = []  # link, down since, up since
    for link, latest in done.live_edges:
        since = announced.get(link.id)
        if latest.status is LinkStatus.DOWN:
            # Announced already: the same outage, even where a late sample moved its
            # start; it keeps the start it was announced with, which its recovery names.
            if since is None:
                events.append(_down_event(link, latest.starts_at))
                starts[link.id] = latest.starts_at
        elif latest.status in (LinkStatus.UP, LinkStatus.DEGRADED) and since is not None:
            ended.append((link, since, latest.starts_at))
    if ended:
        await cur.execute(
            query("link_outage_ends"),
            {"link_ids": [e[0].id for e in ended], "starts_at": [e[1] for e in ended]},
        )
        outage_end = {(row[0], row[1]): row[2] for row in await cur.fetchall()}
        for link, since, up_since in ended:
            end = outage_end.get((link.id, since)) or up_since
            events.append(_recovered_event(link, since, end, up_since))
        await cur.execute(query("link_alerts_delete"), {"link_ids": [e[0].id for e in ended]})
    if starts:
        await cur.execute(
            query("link_alerts_set"),
            {"link_ids": list(starts), "down_since": list(starts.values())},
        )
    done.events += await record_events(cur, events)


def _down_event(link: LinkSpec, since: datetime) -> Event:
    return Event(
        id=f"link-down:{link.id}:{since.isoformat()}",
        kind=EventKind.LINK_DOWN,
        occurred_at=since,
        customer_id=link.customer,
        link_id=link.id,
        payload={"down_since": since.isoformat()},
    )


def _recovered_event(link: LinkSpec, since: datetime, end: datetime, up_since: datetime) -> Event:
    return Event(
        id=f"link-recovered:{link.id}:{since.isoformat()}",
        kind=EventKind.LINK_RECOVERED,
        occurred_at=up_since,
        customer_id=link.customer,
        link_id=link.id,
        payload={
            "down_since": since.isoformat(),
            "down_until": end.isoformat(),
            "down_s": int((end - since).total_seconds()),
            # Time between the outage's end and the first available sample, when the
            # monitor could not see the link in between.
            "unmeasured_s": int((up_since - end).total_seconds()),
        },
    )


async def _frontiers(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], probes: Sequence[_Key]
) -> dict[str, datetime]:
    """Each link's frontier: the time of the newest sample of any of its availability
    probes, the latest moment its status is measured rather than projected.

    Beyond its newest sample a probe's stored status is a projection (its outcome held
    for stale_after, then UNKNOWN) that the next sample replaces. The link's latest
    interval, the end of that projection, is therefore not a status any sample has shown:
    a probe that answers later in each round would "recover" the link every round, at a
    time still to come. At the frontier, every probe's status is what its own newest
    sample says (or UNKNOWN where that is older than stale_after).
    """
    if not probes:
        return {}
    await cur.execute(
        query("states_newest_samples"),
        {"link_ids": [p[0] for p in probes], "probe_ids": [p[1] for p in probes]},
    )
    result: dict[str, datetime] = {}
    for ord_, newest in await cur.fetchall():
        link_id = probes[ord_ - 1][0]
        if newest is not None and (link_id not in result or newest > result[link_id]):
            result[link_id] = newest
    return result


def _interval_at(intervals: Sequence[Interval], moment: datetime) -> Interval | None:
    return next((i for i in intervals if i.contains(moment)), None)


def _diff(
    old: Sequence[Interval], new: Sequence[Interval]
) -> tuple[list[Interval], list[Interval]]:
    """Rows to delete and rows to insert to turn `old` into `new` (unchanged rows stay)."""
    kept = set(old) & set(new)
    return [i for i in old if i not in kept], [i for i in new if i not in kept]


async def _record_progress(cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work]) -> None:
    rows: list[tuple[_Work, datetime]] = []
    for work in works:
        # Samples up to the last one before `end` are fully reflected: its interval ends
        # at `end` or earlier, and nothing after `end` changes what lies before it.
        included = [s for s in work.samples if work.end is None or s.observed_at < work.end]
        if included:
            rows.append((work, included[-1].observed_at))
    if rows:
        await cur.execute(
            query("states_progress_upsert"),
            {
                **_pairs([w for w, _ in rows]),
                "derived_through": [through for _, through in rows],
                "from": [w.start for w, _ in rows],
                "grounded": [w.grounded for w, _ in rows],
            },
        )


# --- queries -------------------------------------------------------------------------


async def link_intervals(
    db: Database, link_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[Interval]]:
    """Each link's stored intervals clipped to [start, end), every link id a key.

    Time a link's intervals do not cover (before its first sample) is absent: an SLA
    computation counts it as unknown. An open interval is clipped to `end`, so pass
    `min(end, now)` for a window still running: stored intervals run ahead of the clock
    by up to stale_after.
    """
    async with db.connection() as conn:
        return await _link_intervals_on(conn, link_ids, start, end)


async def _link_intervals_on(
    conn: psycopg.AsyncConnection[Any], link_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[Interval]]:
    result: dict[str, list[Interval]] = {link_id: [] for link_id in link_ids}
    if not link_ids:
        return result
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        query("link_states_overlapping"),
        {"link_ids": list(link_ids), "start": start, "end": end},
    )
    for link_id, status, starts_at, ends_at in await cur.fetchall():
        result[link_id] += clip_intervals(
            [Interval(LinkStatus(status), starts_at, ends_at)], start, end
        )
    return result


async def probe_intervals(
    db: Database, link: LinkSpec, start: datetime, end: datetime
) -> dict[str, list[Interval]]:
    """Each probe's stored intervals (with their errors) clipped to [start, end)."""
    found = await _probe_intervals_of(db, [link], start, end)
    return {probe.id: found[(link.id, probe.id)] for probe in link.probes}


async def _probe_intervals_of(
    db: Database, links: Sequence[LinkSpec], start: datetime, end: datetime
) -> dict[_Key, list[Interval]]:
    async with db.connection() as conn:
        return await _probe_intervals_on(conn, links, start, end)


async def _probe_intervals_on(
    conn: psycopg.AsyncConnection[Any], links: Sequence[LinkSpec], start: datetime, end: datetime
) -> dict[_Key, list[Interval]]:
    keys = [(link.id, probe.id) for link in links for probe in link.probes]
    result: dict[_Key, list[Interval]] = {key: [] for key in keys}
    if not keys:
        return result
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        query("states_probe_overlapping"),
        {
            "link_ids": [k[0] for k in keys],
            "probe_ids": [k[1] for k in keys],
            "from": [start] * len(keys),
            "to": [end] * len(keys),
        },
    )
    for ord_, status, starts_at, ends_at, error in await cur.fetchall():
        result[keys[ord_ - 1]] += clip_intervals(
            [Interval(LinkStatus(status), starts_at, ends_at, error)], start, end
        )
    return result


async def _probe_intervals(
    db: Database, links: Sequence[LinkSpec], start: datetime, end: datetime
) -> dict[str, set[tuple[str, Interval]]]:
    async with db.connection() as conn:
        return _per_link(links, await _probe_intervals_on(conn, links, start, end))


def _per_link(
    links: Sequence[LinkSpec], found: dict[_Key, list[Interval]]
) -> dict[str, set[tuple[str, Interval]]]:
    result: dict[str, set[tuple[str, Interval]]] = {link.id: set() for link in links}
    for (link_id, probe_id), intervals in found.items():
        result[link_id] |= {(probe_id, i) for i in intervals}
    return result


async def incidents(
    db: Database, link_ids: Sequence[str], start: datetime, end: datetime
) -> list[Incident]:
    """The outages of these links overlapping [start, end), oldest first, unclipped:
    an outage that began before `start` shows its real start."""
    if not link_ids:
        return []
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("incidents_overlapping"),
            {"link_ids": list(link_ids), "start": start, "end": end},
        )
        rows = await cur.fetchall()
    return [
        Incident(
            link_id=link_id,
            starts_at=starts_at,
            ends_at=ends_at,
            seen_until=seen_until,
            probes=tuple(
                IncidentProbe(probe_id, probe_start, error)
                for probe_id, probe_start, error in zip(
                    probe_ids, probe_starts, errors, strict=True
                )
            ),
        )
        for link_id, starts_at, ends_at, seen_until, probe_ids, probe_starts, errors in rows
    ]


async def state_seconds(
    db: Database,
    link_ids: Sequence[str],
    start: datetime,
    end: datetime,
    bucket: timedelta,
    origin: datetime,
) -> dict[tuple[str, datetime], dict[LinkStatus, timedelta]]:
    """Time each link spent in each status per bucket of [start, end), from the stored
    intervals: the state half of the hourly and daily rollups (buckets aligned to
    `origin`, as in `collector.rollups`). Time no interval covers is not counted: it is
    unknown to the SLA engine. Pass `end <= now`: stored intervals run ahead of the clock.
    """
    result: dict[tuple[str, datetime], dict[LinkStatus, timedelta]] = {}
    for link_id, intervals in (await link_intervals(db, link_ids, start, end)).items():
        for interval in intervals:
            cursor, stop = interval.starts_at, interval.ends_at or end
            while cursor < stop:
                bucket_start = origin + ((cursor - origin) // bucket) * bucket
                piece_end = min(stop, bucket_start + bucket)
                per_status = result.setdefault((link_id, bucket_start), {})
                per_status[interval.status] = (
                    per_status.get(interval.status, timedelta()) + piece_end - cursor
                )
                cursor = piece_end
    return result
