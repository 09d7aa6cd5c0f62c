"""Hourly and daily rollups of samples per link and probe, on both storage engines.

A rollup bucket holds the samples received by outcome, RTT mean and p95, loss mean and
jitter mean of one probe of one link, over one UTC hour or day, each computed from raw
samples (a daily p95 is the p95 of the day's samples, never derived from hourly ones).
Interface traffic is not in samples yet and so not in rollups.

Both engines work the same way, so `rollups()` returns the same numbers on either:
buckets before a watermark are read from a materialization, later buckets are aggregated
from raw samples at read time. On TimescaleDB the materialization is the continuous
aggregates `samples_hourly` / `samples_daily` (migrate.py creates them with refresh
policies); on plain PostgreSQL it is the `rollups` table, which this module maintains:
`materialize_rollups()` moves the watermark forward over complete buckets (housekeeping
calls it), `refresh_rollups()` recomputes buckets before the watermark that late samples
changed. Samples at or after the watermark need nothing: a refresh for them is a no-op.

One difference remains: samples already older than the retention horizon when they are
stored (an import of old history) are rolled up on plain PostgreSQL, which materializes
before it deletes, but never on TimescaleDB, where the retention policy's drop_chunks
invalidates the range it drops and a refresh there would race it. Their buckets are
aggregated on read until their chunk is dropped, and then gone.

On plain PostgreSQL, recomputations are serialised by an advisory lock (two of one
bucket from different snapshots must not race), and a materialization step first
commits a claim on its range. A refresh whose samples start at or after the claim skips
the lock: the step's snapshot is taken after the claim, so it already includes them.

This module must never delete rollups or samples (housekeeping does), and never refresh
a TimescaleDB aggregate over a range whose raw chunks retention has dropped: the
aggregate would lose those buckets.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query
from kernel.domain import Outcome, Sample

logger = logging.getLogger(__name__)

Bucket = Literal["hour", "day"]
BUCKETS: tuple[Bucket, ...] = ("hour", "day")
BUCKET_WIDTHS: Mapping[Bucket, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
# TimescaleDB's default time_bucket origin for timestamptz; date_bin on plain PostgreSQL
# uses the same one so both engines put a sample in the same bucket. Hours and days
# start on the UTC hour and at UTC midnight.
BUCKET_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)

_AGGREGATES: Mapping[Bucket, str] = {"hour": "samples_hourly", "day": "samples_daily"}
_TIMESCALEDB_READ: Mapping[Bucket, str] = {
    "hour": "rollups_timescaledb_read_hourly",
    "day": "rollups_timescaledb_read_daily",
}
# Any constant no other application on the database uses: "LNKROLL".
_LOCK_KEY = 0x4C4E4B524F4C4C
# How much plain-PostgreSQL materialization one transaction does. It holds the rollup
# lock, which a refresh for samples inside or before the step waits for (live samples
# are after it and never wait).
_MATERIALIZE_STEP: Mapping[Bucket, timedelta] = {
    "hour": timedelta(hours=6),
    "day": timedelta(days=1),
}
# TimescaleDB refreshes housekeeping asks for at once. Ranges already materialized and
# not invalidated cost next to nothing; the first backfill of a year of history does not.
_TIMESCALEDB_REFRESH_STEP = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Rollup:
    """One probe of one link over one bucket (a UTC hour or day).

    Means and p95 are over the samples that have the value (NULLs are ignored, as SQL
    aggregates do) and None when none has it. p95 follows PostgreSQL's `percentile_cont`:
    linear interpolation between the two nearest ranks. `samples_expected` is the
    bucket's length divided by the probe's interval, when that interval was given; for a
    bucket still running at `now` it covers only the part before `now`.
    """

    link_id: str
    probe_id: str
    bucket: Bucket
    bucket_start: datetime
    samples_up: int
    samples_degraded: int
    samples_down: int
    samples_unknown: int
    rtt_mean_ms: float | None
    rtt_p95_ms: float | None
    loss_mean_pct: float | None
    jitter_mean_ms: float | None
    samples_expected: float | None = None

    @property
    def bucket_end(self) -> datetime:
        return self.bucket_start + BUCKET_WIDTHS[self.bucket]

    @property
    def samples_received(self) -> int:
        return self.samples_up + self.samples_degraded + self.samples_down + self.samples_unknown

    @property
    def samples_by_outcome(self) -> dict[Outcome, int]:
        return {
            Outcome.UP: self.samples_up,
            Outcome.DEGRADED: self.samples_degraded,
            Outcome.DOWN: self.samples_down,
            Outcome.UNKNOWN: self.samples_unknown,
        }


def bucket_floor(moment: datetime, bucket: Bucket) -> datetime:
    """The start of the bucket holding `moment` (UTC)."""
    _require_aware(moment)
    width = BUCKET_WIDTHS[bucket]
    return BUCKET_ORIGIN + ((moment - BUCKET_ORIGIN) // width) * width


def bucket_ceil(moment: datetime, bucket: Bucket) -> datetime:
    """The first bucket start at or after `moment` (UTC)."""
    floor = bucket_floor(moment, bucket)
    return floor if floor == moment else floor + BUCKET_WIDTHS[bucket]


def expected_samples(
    bucket_start: datetime, bucket: Bucket, interval: timedelta, now: datetime | None = None
) -> float:
    """How many samples a probe with `interval` takes in the bucket (up to `now`)."""
    if interval <= timedelta(0):
        raise ValueError(f"a probe interval must be positive, got {interval}")
    end = bucket_start + BUCKET_WIDTHS[bucket]
    if now is not None:
        end = max(bucket_start, min(end, now))
    return (end - bucket_start) / interval


async def rollups(
    db: Database,
    link_ids: Collection[str],
    start: datetime,
    end: datetime,
    bucket: Bucket,
    *,
    probe_intervals: Mapping[tuple[str, str], timedelta] | None = None,
    now: datetime | None = None,
) -> list[Rollup]:
    """Rollups of `link_ids` for the buckets starting in [start, end), by link, probe, time.

    Only buckets with at least one sample are returned. `probe_intervals` maps
    (link_id, probe_id) to the probe's configured interval, which gives
    `Rollup.samples_expected` (None for probes missing from it); pass `now` so that a
    running bucket expects only the samples due so far.
    """
    _require_aware(start, end)
    if not link_ids or start >= end:
        return []
    params: dict[str, Any] = {
        "bucket": bucket,
        "link_ids": sorted(set(link_ids)),
        "start": bucket_ceil(start, bucket),
        "end": bucket_ceil(end, bucket),
        "width": BUCKET_WIDTHS[bucket],
        "origin": BUCKET_ORIGIN,
    }
    name = _TIMESCALEDB_READ[bucket] if db.timescaledb else "rollups_read"
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query(name), params)
        rows = await cur.fetchall()
    intervals = probe_intervals or {}
    found = []
    for row in rows:
        interval = intervals.get((row[0], row[1]))
        found.append(
            Rollup(
                link_id=row[0],
                probe_id=row[1],
                bucket=bucket,
                bucket_start=row[2],
                samples_up=row[3],
                samples_degraded=row[4],
                samples_down=row[5],
                samples_unknown=row[6],
                rtt_mean_ms=row[7],
                rtt_p95_ms=row[8],
                loss_mean_pct=row[9],
                jitter_mean_ms=row[10],
                samples_expected=(
                    None if interval is None else expected_samples(row[2], bucket, interval, now)
                ),
            )
        )
    return found


async def refresh_rollups(
    db: Database,
    start: datetime,
    end: datetime,
    *,
    link_ids: Collection[str] | None = None,
) -> int:
    """Bring the materialized rollups of every bucket overlapping [start, end) up to date.

    Call it after storing samples, with the range they cover (see `refresh_after_write`).
    Only buckets before the watermark are recomputed; later ones are aggregated at read
    time anyway, so for live samples this is one small query. `link_ids` limits the work
    to those links on plain PostgreSQL (TimescaleDB refreshes what was invalidated, for
    all links). Idempotent. Returns the buckets inserted or changed on plain PostgreSQL,
    the aggregate refreshes run on TimescaleDB.
    """
    _require_aware(start, end)
    if start >= end or (link_ids is not None and not link_ids):
        return 0
    if db.timescaledb:
        return await _refresh_timescaledb(db, start, end, up_to=None)
    ids = None if link_ids is None else sorted(set(link_ids))
    changed = 0
    async with db.connection() as conn:
        # The common case, samples of the running buckets, ends here without a lock:
        # nothing at or after the claim is materialized or being materialized.
        marks = await _plain_watermarks(conn)
        if all(
            bucket not in marks or bucket_floor(start, bucket) >= marks[bucket][1]
            for bucket in BUCKETS
        ):
            return 0
        async with conn.transaction():
            await conn.execute(query("rollups_lock"), {"key": _LOCK_KEY})
            marks = await _plain_watermarks(conn)
            for bucket in BUCKETS:
                if bucket not in marks:
                    continue
                until = marks[bucket][0]
                lo, hi = bucket_floor(start, bucket), min(bucket_ceil(end, bucket), until)
                if lo < hi:
                    changed += await _recompute(conn, bucket, lo, hi, ids)
    if changed:
        logger.info(
            "rollups refreshed start=%s end=%s links=%s buckets_changed=%d",
            start.isoformat(),
            end.isoformat(),
            "all" if ids is None else len(ids),
            changed,
        )
    return changed


async def refresh_after_write(db: Database, samples: Sequence[Sample]) -> int:
    """`refresh_rollups` for a batch just stored, for its links and the hours it touches.

    Runs of consecutive hours are refreshed together, so a straggler hours older than the
    rest of the batch does not make everything between them recomputed.
    """
    hours: dict[datetime, set[str]] = {}
    for s in samples:
        hours.setdefault(bucket_floor(s.observed_at, "hour"), set()).add(s.link_id)
    changed = 0
    run_start: datetime | None = None
    run_links: set[str] = set()
    width = BUCKET_WIDTHS["hour"]
    ordered = sorted(hours)
    for i, hour in enumerate(ordered):
        if run_start is None:
            run_start, run_links = hour, set()
        run_links |= hours[hour]
        if i + 1 == len(ordered) or ordered[i + 1] != hour + width:
            changed += await refresh_rollups(db, run_start, hour + width, link_ids=run_links)
            run_start = None
    return changed


async def materialize_rollups(db: Database, now: datetime) -> dict[Bucket, datetime | None]:
    """Materialize every complete bucket before `now`; return the watermarks after it.

    On plain PostgreSQL this moves the watermark of each width up to `now`'s bucket,
    materializing from the oldest sample on the first run, a few hours or a day per
    transaction. On TimescaleDB it refreshes the aggregates over the raw data that
    retention keeps, which backfills history the refresh policies' windows do not reach
    (a database that had samples before the aggregates existed) and is cheap otherwise.
    """
    _require_aware(now)
    if db.timescaledb:
        await _refresh_timescaledb(db, None, None, up_to=now)
    else:
        for bucket in BUCKETS:
            await _materialize_plain(db, bucket, now)
    return await rollup_watermarks(db)


async def rollup_watermarks(db: Database) -> dict[Bucket, datetime | None]:
    """Per bucket width, where materialized rollups end (None: nothing materialized).

    On TimescaleDB this is the end of the newest materialized bucket, which can be before
    the end of the range last refreshed when the newest buckets had no samples.
    """
    async with db.connection() as conn:
        if not db.timescaledb:
            marks = await _plain_watermarks(conn)
            return {bucket: marks[bucket][0] if bucket in marks else None for bucket in BUCKETS}
        views = await _timescaledb_watermarks(conn)
    return {bucket: views.get(_AGGREGATES[bucket]) for bucket in BUCKETS}


# -- plain PostgreSQL ------------------------------------------------------------------


async def _materialize_plain(db: Database, bucket: Bucket, now: datetime) -> None:
    target = bucket_floor(now, bucket)
    began = None
    while True:
        async with db.connection() as conn:
            async with conn.transaction():
                await conn.execute(query("rollups_lock"), {"key": _LOCK_KEY})
                mark = (await _plain_watermarks(conn)).get(bucket)
                if mark is None:
                    oldest = await _scalar(conn, "rollups_oldest_sample")
                    until = target if oldest is None else min(target, bucket_floor(oldest, bucket))
                    await _set_watermark(conn, bucket, until)
                else:
                    until = mark[0]
            if until >= target:
                break
            step_end = min(target, until + _MATERIALIZE_STEP[bucket])
            # Committed before the step's snapshot: see rollups_watermark_claim.sql.
            await conn.execute(
                query("rollups_watermark_claim"), {"bucket": bucket, "until": step_end}
            )
            async with conn.transaction():
                await conn.execute(query("rollups_lock"), {"key": _LOCK_KEY})
                mark = (await _plain_watermarks(conn)).get(bucket)
                if mark is None or mark[0] != until:
                    continue  # another process moved it meanwhile: start over from there
                began = began or until
                await _recompute(conn, bucket, until, step_end, None)
                await _set_watermark(conn, bucket, step_end)
    if began is not None:
        logger.info(
            "rollups materialized bucket=%s from=%s until=%s",
            bucket,
            began.isoformat(),
            target.isoformat(),
        )


async def _recompute(
    conn: psycopg.AsyncConnection[Any],
    bucket: Bucket,
    start: datetime,
    end: datetime,
    link_ids: list[str] | None,
) -> int:
    cur = await conn.execute(
        query("rollups_refresh"),
        {
            "bucket": bucket,
            "width": BUCKET_WIDTHS[bucket],
            "origin": BUCKET_ORIGIN,
            "start": start,
            "end": end,
            "link_ids": link_ids,
        },
    )
    return max(cur.rowcount, 0)


async def _plain_watermarks(
    conn: psycopg.AsyncConnection[Any],
) -> dict[str, tuple[datetime, datetime]]:
    """Per bucket width: (materialized_until, claimed_until)."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query("rollups_watermarks"))
    return {bucket: (until, claimed) for bucket, until, claimed in await cur.fetchall()}


async def _set_watermark(
    conn: psycopg.AsyncConnection[Any], bucket: Bucket, until: datetime
) -> None:
    await conn.execute(query("rollups_watermark_set"), {"bucket": bucket, "until": until})


# -- TimescaleDB -----------------------------------------------------------------------


async def _refresh_timescaledb(
    db: Database, start: datetime | None, end: datetime | None, *, up_to: datetime | None
) -> int:
    """Refresh both aggregates over [start, end) within what is safe to refresh.

    With `up_to` None the range is capped at the watermark (only invalidated buckets
    change); otherwise it extends to `up_to`'s bucket, materializing complete buckets.
    The range never reaches below the raw data that retention keeps.
    """
    calls = 0
    async with db.connection() as conn:
        marks = await _timescaledb_watermarks(conn)
        # Live samples (at or after the watermark) end here, after one small query.
        # TimescaleDB logs an invalidation for whatever lands below its own refresh
        # threshold, so a refresh skipped while a policy run moves it loses nothing.
        if (
            up_to is None
            and start is not None
            and not any(
                (until := marks.get(view)) is not None and bucket_floor(start, bucket) < until
                for bucket, view in _AGGREGATES.items()
            )
        ):
            return 0
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("rollups_timescaledb_raw_bounds"))
        row = await cur.fetchone()
        horizon, oldest = (None, None) if row is None else row
        if oldest is None:
            return 0  # no samples: a refresh could only empty the aggregates
        for bucket in BUCKETS:
            view = _AGGREGATES[bucket]
            lo = bucket_floor(oldest, bucket)
            if horizon is not None:
                lo = max(lo, bucket_ceil(horizon, bucket))
            if start is not None:
                lo = max(lo, bucket_floor(start, bucket))
            if up_to is None:
                until = marks.get(view)
                if until is None:
                    continue
                hi = until if end is None else min(until, bucket_ceil(end, bucket))
            else:
                hi = bucket_floor(up_to, bucket)
            step = _TIMESCALEDB_REFRESH_STEP if up_to is not None else hi - lo
            while lo < hi:
                step_end = min(hi, lo + step)
                await _refresh_step(conn, view, lo, step_end)
                calls += 1
                lo = step_end
    return calls


# How long a refresh waits for another one over the same window (a policy job's) to
# finish, pausing a little longer each time: longer than a policy run of a busy hour.
_CONCURRENT_REFRESH_WAIT = timedelta(seconds=120)
_CONCURRENT_REFRESH_PAUSES = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


async def _refresh_step(
    conn: psycopg.AsyncConnection[Any], view: str, start: datetime, end: datetime
) -> None:
    """One refresh call. TimescaleDB 2.26.3 and later refuse a refresh whose window
    overlaps one in progress (LockNotAvailable) instead of waiting for it, and its own
    policy job refreshes the same recent buckets: wait for that one to finish and refresh
    then, which is what older releases did by blocking."""
    waited = 0.0
    for attempt in itertools.count():
        try:
            await conn.execute(
                query("rollups_timescaledb_refresh"), {"view": view, "start": start, "end": end}
            )
            return
        except psycopg.errors.LockNotAvailable:
            if waited >= _CONCURRENT_REFRESH_WAIT.total_seconds():
                raise
            pause = _CONCURRENT_REFRESH_PAUSES[min(attempt, len(_CONCURRENT_REFRESH_PAUSES) - 1)]
            if attempt == 0:
                logger.info("rollups: %s is being refreshed by another session; waiting", view)
            await asyncio.sleep(pause)
            waited += pause


async def _timescaledb_watermarks(
    conn: psycopg.AsyncConnection[Any],
) -> dict[str, datetime | None]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query("rollups_timescaledb_watermarks"))
    return {view: until for view, until in await cur.fetchall()}


# -- helpers ---------------------------------------------------------------------------


async def _scalar(conn: psycopg.AsyncConnection[Any], name: str) -> Any:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query(name))
    row = await cur.fetchone()
    return None if row is None else row[0]


def _require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None:
            raise ValueError(f"rollup times must be timezone-aware, got {moment}")
