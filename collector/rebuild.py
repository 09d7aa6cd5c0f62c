"""Recompute a range of stored status intervals from the samples, and report what changed.

`rebuild_states` re-derives [start, end) a chunk at a time, each chunk one transaction
under the links' locks (safe while the daemon runs); `rebuild_within` reports what a
derivation in the caller's transaction changed (an import). Both compare the stored
intervals before and after; the derivation itself is `collector.deriver`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from collector.database import Database
from collector.deriver import derive_range
from collector.intervals import Interval, LinkSpec
from collector.state_reads import link_intervals, link_intervals_on, probe_intervals_on
from kernel.domain import LinkStatus
from kernel.formatting import count_of
from kernel.progress import Progress

logger = logging.getLogger(__name__)


_Key = tuple[str, str]  # (link_id, probe_id)


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


async def rebuild_states(
    db: Database,
    links: Sequence[LinkSpec],
    start: datetime,
    end: datetime,
    *,
    chunk: timedelta = timedelta(days=7),
    progress: Progress | None = None,
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
    samples_read = await derive_range(db, links, start, end, chunk=chunk, progress=progress)
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
    before_links = await link_intervals_on(conn, link_ids, start, end)
    before_probes = _per_link(links, await probe_intervals_on(conn, links, start, end))
    samples_read = await derive()
    after_links = await link_intervals_on(conn, link_ids, start, end)
    after_probes = _per_link(links, await probe_intervals_on(conn, links, start, end))
    return _rebuild_report(
        links, start, end, samples_read, (before_links, before_probes), (after_links, after_probes)
    )


async def _probe_intervals(
    db: Database, links: Sequence[LinkSpec], start: datetime, end: datetime
) -> dict[str, set[tuple[str, Interval]]]:
    async with db.connection() as conn:
        return _per_link(links, await probe_intervals_on(conn, links, start, end))


def _per_link(
    links: Sequence[LinkSpec], found: dict[_Key, list[Interval]]
) -> dict[str, set[tuple[str, Interval]]]:
    result: dict[str, set[tuple[str, Interval]]] = {link.id: set() for link in links}
    for (link_id, probe_id), intervals in found.items():
        result[link_id] |= {(probe_id, i) for i in intervals}
    return result
