"""Queries of the stored probe and link status intervals, for the SLA engine and the portal.

The rows are the ones `collector.deriver` keeps equal to `collector.intervals` over all
stored samples; the failures are the probes it could not derive. Only reads: nothing
here writes a row, reads a clock or computes availability over a window (that is `sla/`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.intervals import Interval, LinkSpec, clip_intervals
from collector.queries import query
from kernel.config.sites import AT
from kernel.domain import LinkStatus

_Key = tuple[str, str]  # (link_id, probe_id)


@dataclass(frozen=True, slots=True)
class IncidentProbe:
    """A probe that saw an outage: when it went DOWN and the error it reported then."""

    probe_id: str
    starts_at: datetime
    error: str | None


@dataclass(frozen=True, slots=True)
class Witnesses:
    """Of one probe of a link measured from several sites: the sites that saw an outage
    (each with its own start and error) and those that did not."""

    probe: str
    down: tuple[tuple[str, IncidentProbe], ...]  # (site, what it saw), first to see it first
    not_down: tuple[str, ...]


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

    def witnesses(self, sites: Sequence[str], home: str) -> list[Witnesses]:
        """Per probe of a link measured from `sites`, which sites saw it down (with when
        and why) and which did not, in the order the probes saw it. A measurement's site
        is in its id (`probe@site`; the plain id is `home`'s)."""
        seen: dict[str, dict[str, IncidentProbe]] = {}
        for probe in self.probes:
            base, _, site = probe.probe_id.partition(AT)
            seen.setdefault(base, {})[site or home] = probe
        return [
            Witnesses(base, tuple(down.items()), tuple(s for s in sites if s not in down))
            for base, down in seen.items()
        ]

    @property
    def duration(self) -> timedelta | None:
        """How long it lasted; None while running (then `now - starts_at`)."""
        return None if self.ends_at is None else self.ends_at - self.starts_at


@dataclass(frozen=True, slots=True)
class StateFailure:
    """A probe whose intervals cannot be derived, as a `StateDeriver` recorded it."""

    link_id: str
    probe_id: str
    since: datetime  # its first failure since it last derived
    last_failed_at: datetime
    error: str  # one line: the exception's type and message


async def state_failures(db: Database) -> list[StateFailure]:
    """The probes whose intervals cannot be derived now, oldest failure first."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("state_failures_select"))
        return [StateFailure(*row) for row in await cur.fetchall()]


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
        return await link_intervals_on(conn, link_ids, start, end)


async def link_intervals_on(
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
        return await probe_intervals_on(conn, links, start, end)


async def probe_intervals_on(
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
