"""Hourly and daily rollups: hand-computed numbers on plain PostgreSQL, materialization and
late-sample refresh, and the same numbers from TimescaleDB's continuous aggregates.

The TimescaleDB tests run on the machine's PostgreSQL 15 when the extension is installed
there and skip otherwise.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from collector.database import Database
from collector.rollups import (
    Rollup,
    bucket_ceil,
    bucket_floor,
    expected_samples,
    materialize_rollups,
    refresh_after_write,
    refresh_rollups,
    rollup_watermarks,
    rollups,
)
from collector.settings import StorageSettings
from collector.writer import write_samples
from kernel.domain import Outcome, Sample

UP, DEGRADED, DOWN, UNKNOWN = Outcome.UP, Outcome.DEGRADED, Outcome.DOWN, Outcome.UNKNOWN
DAY = datetime(2024, 3, 10, tzinfo=UTC)


def at(hour: int, minute: int = 0, second: int = 0, micro: int = 0, day: int = 10) -> datetime:
    return datetime(2024, 3, day, hour, minute, second, micro, tzinfo=UTC)


def sample(
    when: datetime,
    outcome: Outcome = UP,
    rtt: float | None = None,
    loss: float | None = None,
    jitter: float | None = None,
    link: str = "a",
    probe: str = "icmp",
) -> Sample:
    return Sample(link, probe, when, outcome, rtt_ms=rtt, loss_pct=loss, jitter_ms=jitter)


# Link a, probe icmp. Hour 10 has rtt 10..50 (mean 30, p95 at rank 0.95 * 4 = 3.8:
# 40 + 0.8 * 10 = 48); the last microsecond of the hour belongs to it, 11:00 does not.
HAND_SAMPLES = [
    sample(at(10, 0), UP, 10.0, 0.0, 1.0),
    sample(at(10, 15), UP, 20.0, 0.0, 2.0),
    # 11:30 at UTC+01:00 is 10:30 UTC: buckets are UTC hours whatever the offset.
    sample(
        datetime(2024, 3, 10, 11, 30, tzinfo=timezone(timedelta(hours=1))),
        DEGRADED,
        30.0,
        10.0,
        3.0,
    ),
    sample(at(10, 45), UP, 40.0, 0.0, 4.0),
    sample(at(10, 59, 59, 999_999), UP, 50.0, 0.0, 5.0),
    sample(at(11, 0), DOWN, None, 100.0, None),
    sample(at(11, 30), UNKNOWN),
    sample(at(23, 59, 59), UP, 7.0, 0.0, 1.0),
    sample(at(0, 0, day=11), UP, 9.0, 0.0, 0.5),
    # Other probes and links stay apart.
    sample(at(10, 20), UP, 5.0, probe="tcp"),
    sample(at(10, 5), UP, 100.0, link="b"),
]


def rollup(
    start: datetime,
    bucket: str,
    counts: tuple[int, int, int, int],
    rtt_mean: float | None,
    rtt_p95: float | None,
    loss_mean: float | None,
    jitter_mean: float | None,
    link: str = "a",
    probe: str = "icmp",
    expected: float | None = None,
) -> Rollup:
    return Rollup(
        link, probe, bucket, start, *counts, rtt_mean, rtt_p95, loss_mean, jitter_mean, expected
    )  # type: ignore[arg-type]


HAND_HOURLY = [
    rollup(at(10), "hour", (4, 1, 0, 0), 30.0, 48.0, 2.0, 3.0),
    rollup(at(11), "hour", (0, 0, 1, 1), None, None, 100.0, None),
    rollup(at(23), "hour", (1, 0, 0, 0), 7.0, 7.0, 0.0, 1.0),
    rollup(at(0, day=11), "hour", (1, 0, 0, 0), 9.0, 9.0, 0.0, 0.5),
    rollup(at(10), "hour", (1, 0, 0, 0), 5.0, 5.0, None, None, probe="tcp"),
]
# The day's rtt: 10, 20, 30, 40, 50, 7 -> sorted 7 10 20 30 40 50, rank 0.95 * 5 = 4.75:
# 40 + 0.75 * 10 = 47.5. A daily p95 from the raw samples, not from hourly ones.
HAND_DAILY = [
    rollup(DAY, "day", (5, 1, 1, 1), 157 / 6, 47.5, 110 / 7, 16 / 6),
    rollup(at(0, day=11), "day", (1, 0, 0, 0), 9.0, 9.0, 0.0, 0.5),
    rollup(DAY, "day", (1, 0, 0, 0), 5.0, 5.0, None, None, probe="tcp"),
]


def by_key(found: list[Rollup]) -> list[Rollup]:
    return sorted(found, key=lambda r: (r.link_id, r.probe_id, r.bucket_start))


def assert_same(found: list[Rollup], wanted: list[Rollup], rel: float = 1e-12) -> None:
    """Counts, keys and p95 exactly; means within `rel` (summation order may differ)."""
    assert len(found) == len(wanted), (found, wanted)
    for got, want in zip(by_key(found), by_key(wanted), strict=True):
        for f in fields(Rollup):
            a, b = getattr(got, f.name), getattr(want, f.name)
            if f.name.endswith("_mean_ms") or f.name.endswith("_mean_pct"):
                assert (a is None) == (b is None), (f.name, got, want)
                if a is not None:
                    assert math.isclose(a, b, rel_tol=rel, abs_tol=1e-12), (f.name, got, want)
            else:
                assert a == b, (f.name, got, want)


async def test_hand_computed_rollups_on_plain_postgresql(database: Database) -> None:
    await write_samples(database, HAND_SAMPLES)
    end = at(0, day=12)

    hourly = await rollups(database, ["a"], DAY, end, "hour")
    assert_same(hourly, HAND_HOURLY)
    assert [(r.link_id, r.probe_id, r.bucket_start) for r in hourly] == [
        ("a", "icmp", at(10)),
        ("a", "icmp", at(11)),
        ("a", "icmp", at(23)),
        ("a", "icmp", at(0, day=11)),
        ("a", "tcp", at(10)),
    ]
    assert hourly[0].samples_received == 5
    assert hourly[0].samples_by_outcome == {UP: 4, DEGRADED: 1, DOWN: 0, UNKNOWN: 0}
    assert hourly[0].bucket_end == at(11)
    assert_same(await rollups(database, ["a"], DAY, end, "day"), HAND_DAILY)

    # Buckets that start in [start, end): 10:00 is in [10:00, 11:00), 11:00 is not.
    window = await rollups(database, ["a", "b"], at(10), at(11), "hour")
    assert [(r.link_id, r.probe_id) for r in window] == [("a", "icmp"), ("a", "tcp"), ("b", "icmp")]
    assert await rollups(database, ["a"], at(10, 1), at(11), "hour") == []
    assert await rollups(database, [], DAY, end, "hour") == []


async def test_expected_samples_come_from_the_probe_interval(database: Database) -> None:
    await write_samples(database, HAND_SAMPLES)
    intervals = {("a", "icmp"): timedelta(minutes=15)}
    hourly = await rollups(database, ["a"], at(10), at(11), "hour", probe_intervals=intervals)
    assert [(r.probe_id, r.samples_expected) for r in hourly] == [("icmp", 4.0), ("tcp", None)]
    daily = await rollups(
        database, ["a"], DAY, DAY + timedelta(days=1), "day", probe_intervals=intervals
    )
    assert daily[0].samples_expected == 96.0
    # A bucket still running expects only what was due by now.
    running = await rollups(
        database, ["a"], at(10), at(11), "hour", probe_intervals=intervals, now=at(10, 30)
    )
    assert running[0].samples_expected == 2.0
    assert expected_samples(at(10), "hour", timedelta(seconds=7)) == pytest.approx(3600 / 7)
    assert expected_samples(at(10), "hour", timedelta(seconds=60), now=at(9)) == 0.0
    with pytest.raises(ValueError, match="positive"):
        expected_samples(at(10), "hour", timedelta(0))


def test_buckets_are_utc_hours_and_days() -> None:
    local = datetime(2024, 3, 31, 2, 30, tzinfo=timezone(timedelta(hours=2)))  # 00:30 UTC
    assert bucket_floor(local, "hour") == datetime(2024, 3, 31, 0, tzinfo=UTC)
    assert bucket_floor(local, "day") == datetime(2024, 3, 31, tzinfo=UTC)
    assert bucket_ceil(at(10), "hour") == at(10)
    assert bucket_ceil(at(10, 0, 0, 1), "hour") == at(11)
    assert bucket_floor(datetime(1999, 12, 31, 23, 59, tzinfo=UTC), "day") == datetime(
        1999, 12, 31, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        bucket_floor(datetime(2024, 1, 1), "hour")  # naive on purpose


async def test_materialized_rollups_match_live_ones_and_late_samples_refresh_them(
    database: Database,
) -> None:
    await write_samples(database, HAND_SAMPLES)
    end = at(0, day=12)
    live_hourly = await rollups(database, ["a", "b"], DAY, end, "hour")
    live_daily = await rollups(database, ["a", "b"], DAY, end, "day")
    assert await rollup_watermarks(database) == {"hour": None, "day": None}

    now = at(12, day=11)
    assert await materialize_rollups(database, now) == {
        "hour": at(12, day=11),
        "day": at(0, day=11),
    }
    async with database.connection() as conn:
        cur = await conn.execute("SELECT bucket, count(*) FROM rollups GROUP BY 1 ORDER BY 1")
        assert await cur.fetchall() == [("day", 3), ("hour", 6)]
    assert_same(await rollups(database, ["a", "b"], DAY, end, "hour"), live_hourly, rel=0)
    assert_same(await rollups(database, ["a", "b"], DAY, end, "day"), live_daily, rel=0)
    # Nothing new: a second run changes nothing.
    assert await materialize_rollups(database, now) == {
        "hour": at(12, day=11),
        "day": at(0, day=11),
    }
    assert await refresh_rollups(database, DAY, end) == 0

    # A late sample (a spool replayed after an outage) lands in materialized buckets:
    # they stay as they were until refreshed.
    late = [sample(at(10, 50), DOWN, None, 100.0, None)]
    await write_samples(database, late)
    stale = await rollups(database, ["a"], at(10), at(11), "hour")
    assert stale[0].samples_down == 0
    assert await refresh_after_write(database, late) == 2  # its hour and its day
    hour = (await rollups(database, ["a"], at(10), at(11), "hour"))[0]
    assert (hour.samples_up, hour.samples_degraded, hour.samples_down) == (4, 1, 1)
    assert hour.loss_mean_pct == pytest.approx(110 / 6, rel=1e-12)
    assert hour.rtt_p95_ms == 48.0  # no rtt in the late sample
    day = (await rollups(database, ["a"], DAY, DAY + timedelta(days=1), "day"))[0]
    assert (day.samples_down, day.samples_received) == (2, 9)
    assert day.loss_mean_pct == pytest.approx(210 / 8, rel=1e-12)
    assert await refresh_after_write(database, late) == 0  # idempotent

    # Live samples (past the watermark) need no refresh: they are aggregated on read.
    fresh = [sample(at(12, 5, day=11), UP, 3.0)]
    await write_samples(database, fresh)
    assert await refresh_after_write(database, fresh) == 0
    assert (await rollups(database, ["a"], at(12, day=11), end, "hour"))[0].rtt_mean_ms == 3.0

    # A refresh for other links leaves these buckets alone.
    other = [sample(at(10, 55), DOWN, link="a")]
    await write_samples(database, other)
    assert await refresh_rollups(database, at(10), at(11), link_ids=["b"]) == 0
    assert await refresh_rollups(database, at(10), at(11), link_ids=[]) == 0
    assert await refresh_rollups(database, at(10), at(11), link_ids=["a"]) == 2


async def test_materialization_starts_at_the_oldest_sample_and_keeps_deleted_buckets(
    database: Database,
) -> None:
    await write_samples(database, HAND_SAMPLES)
    marks = await materialize_rollups(database, at(10, 30))
    assert marks == {"hour": at(10), "day": DAY}
    async with database.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM rollups")
        assert await cur.fetchone() == (0,)  # the 10:00 hour is still running at 10:30
    await materialize_rollups(database, at(0, day=12))
    before = await rollups(database, ["a"], DAY, at(0, day=12), "hour")

    # Retention removes raw samples; refreshing their range must not remove their rollups.
    async with database.connection() as conn:
        await conn.execute("DELETE FROM samples WHERE observed_at < %s", (at(0, day=11),))
    assert await refresh_rollups(database, DAY, at(0, day=12)) == 0
    assert await rollups(database, ["a"], DAY, at(0, day=12), "hour") == before


async def test_refreshes_racing_materialization_leave_no_bucket_stale(database: Database) -> None:
    start = datetime(2024, 4, 1, tzinfo=UTC)
    links = ["core-1", "edge-2", "edge-3"]
    await write_samples(database, generated_samples(1, start, 36))
    late = generated_samples(2, start, 36)
    rng = random.Random(3)
    rng.shuffle(late)

    async def writer() -> None:
        # Spool replays: late samples spread over the materialized and running ranges.
        for i in range(0, 600, 20):
            batch = late[i : i + 20]
            await write_samples(database, batch)
            await refresh_after_write(database, batch)
            await asyncio.sleep(0)

    await asyncio.gather(writer(), materialize_rollups(database, start + timedelta(hours=30)))
    span = (start, start + timedelta(days=2))
    for bucket in ("hour", "day"):
        stored = await rollups(database, links, *span, bucket)  # type: ignore[arg-type]
        async with database.connection() as conn:
            await conn.execute("DELETE FROM rollup_watermarks")
        live = await rollups(database, links, *span, bucket)  # type: ignore[arg-type]
        assert_same(stored, live)
        await materialize_rollups(database, start + timedelta(hours=30))


# -- TimescaleDB --------------------------------------------------------------------------


def generated_samples(seed: int, start: datetime, hours: int) -> list[Sample]:
    """Three links, two probes each, a sample a minute with gaps and every outcome."""
    rng = random.Random(seed)
    found = []
    for link in ("core-1", "edge-2", "edge-3"):
        for probe in ("icmp", "http"):
            for minute in range(hours * 60):
                if rng.random() < 0.05:
                    continue  # a missed run
                outcome = rng.choices([UP, DEGRADED, DOWN, UNKNOWN], [80, 10, 7, 3])[0]
                reachable = outcome in (UP, DEGRADED)
                found.append(
                    Sample(
                        link,
                        probe,
                        start + timedelta(minutes=minute, seconds=rng.randrange(60)),
                        outcome,
                        rtt_ms=rng.lognormvariate(2.5, 0.6) if reachable else None,
                        jitter_ms=rng.uniform(0, 8) if reachable else None,
                        loss_pct=(
                            None
                            if outcome is UNKNOWN
                            else 100.0
                            if not reachable
                            else rng.choice([0.0, 0.0, 0.0, 20.0])
                        ),
                    )
                )
    return found


@pytest.mark.timescaledb
async def test_timescaledb_and_plain_postgresql_give_the_same_rollups(
    database: Database, timescale_db: Database
) -> None:
    # Two engines, not one twice: what plain PostgreSQL materializes, TimescaleDB must too.
    assert (database.timescaledb, timescale_db.timescaledb) == (False, True)
    start = datetime(2024, 2, 28, 21, 0, tzinfo=UTC)  # across a month end and a leap day
    end = start + timedelta(hours=54)
    batch = generated_samples(7, start, 54)
    links = ["core-1", "edge-2", "edge-3"]
    for db in (database, timescale_db):
        assert await write_samples(db, batch) == len(batch)

    async def both(bucket: str) -> tuple[list[Rollup], list[Rollup]]:
        span = (start - timedelta(days=1), end + timedelta(days=1))
        plain = await rollups(database, links, *span, bucket)  # type: ignore[arg-type]
        timescale = await rollups(timescale_db, links, *span, bucket)  # type: ignore[arg-type]
        return plain, timescale

    # Nothing materialized: both aggregate raw samples on read.
    for bucket in ("hour", "day"):
        plain, timescale = await both(bucket)
        assert len(plain) == (54 if bucket == "hour" else 4) * 6
        assert_same(timescale, plain)

    # Materialized up to a point inside the data: part stored, part live.
    now = start + timedelta(hours=40, minutes=10)
    plain_marks = await materialize_rollups(database, now)
    ts_marks = await materialize_rollups(timescale_db, now)
    assert (
        plain_marks
        == ts_marks
        == {"hour": bucket_floor(now, "hour"), "day": bucket_floor(now, "day")}
    )
    for bucket in ("hour", "day"):
        assert_same(*await both(bucket))

    # Late samples into materialized buckets, then the refresh after the write.
    late = generated_samples(8, start + timedelta(hours=5), 3)[::7]
    for db in (database, timescale_db):
        stored = await write_samples(db, late)
        assert stored > 0
        await refresh_after_write(db, late)
    for bucket in ("hour", "day"):
        plain, timescale = await both(bucket)
        assert_same(timescale, plain)
        assert sum(r.samples_received for r in plain) == len(batch) + stored


@pytest.mark.timescaledb
async def test_timescaledb_late_samples_wait_for_the_refresh(timescale_db: Database) -> None:
    await write_samples(timescale_db, HAND_SAMPLES)
    end = at(0, day=12)
    assert_same(await rollups(timescale_db, ["a"], DAY, end, "hour"), HAND_HOURLY)
    assert_same(await rollups(timescale_db, ["a"], DAY, end, "day"), HAND_DAILY)
    marks = await materialize_rollups(timescale_db, at(12, day=11))
    # TimescaleDB's watermark is the end of the newest materialized bucket (the last
    # sample is at 00:00), not the end of the range refreshed.
    assert marks == {"hour": at(1, day=11), "day": at(0, day=11)}
    assert_same(await rollups(timescale_db, ["a"], DAY, end, "day"), HAND_DAILY)

    late = [sample(at(10, 50), DOWN, None, 100.0, None)]
    await write_samples(timescale_db, late)
    assert (await rollups(timescale_db, ["a"], at(10), at(11), "hour"))[0].samples_down == 0
    assert await refresh_after_write(timescale_db, late) == 2  # one refresh per aggregate
    hour = (await rollups(timescale_db, ["a"], at(10), at(11), "hour"))[0]
    assert (hour.samples_up, hour.samples_degraded, hour.samples_down) == (4, 1, 1)
    day = (await rollups(timescale_db, ["a"], DAY, DAY + timedelta(days=1), "day"))[0]
    assert (day.samples_down, day.samples_received) == (2, 9)
    # Live samples are past the watermark: nothing to refresh.
    fresh = [sample(at(13, day=11), UP, 1.0)]
    await write_samples(timescale_db, fresh)
    assert await refresh_after_write(timescale_db, fresh) == 0


@pytest.mark.timescaledb
async def test_timescaledb_aggregates_and_refresh_policies_are_rerunnable(
    timescale_db: Database,
) -> None:
    from collector.migrate import migrate

    async with timescale_db.connection() as conn:
        settings = StorageSettings(
            url=None, data_dir=Path("."), timescaledb="require", retention=timedelta(days=36_500)
        )
        assert await migrate(conn, settings) == []
        cur = await conn.execute(
            "SELECT hypertable_name, config ->> 'start_offset', config ->> 'end_offset',"
            " schedule_interval FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_refresh_continuous_aggregate' ORDER BY 1"
        )
        assert await cur.fetchall() == [
            ("samples_daily", "7 days", "01:00:00", timedelta(hours=1)),
            ("samples_hourly", "3 days", "01:00:00", timedelta(minutes=30)),
        ]
        # A short retention pulls the refresh window in, clear of dropped chunks.
        short = StorageSettings(
            url=None, data_dir=Path("."), timescaledb="require", retention=timedelta(days=5)
        )
        assert await migrate(conn, short) == []
        cur = await conn.execute(
            "SELECT hypertable_name, config ->> 'start_offset' FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_refresh_continuous_aggregate' ORDER BY 1"
        )
        assert await cur.fetchall() == [("samples_daily", "4 days"), ("samples_hourly", "3 days")]
        cur = await conn.execute(
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
            " ORDER BY 1"
        )
        assert await cur.fetchall() == [("samples_daily", False), ("samples_hourly", False)]


@pytest.mark.timescaledb
async def test_timescaledb_and_plain_postgresql_derive_the_same_states(
    database: Database, timescale_db: Database
) -> None:
    """The state half of the rollups: intervals and seconds per state per bucket."""
    from collector.deriver import StateDeriver
    from collector.state_reads import link_intervals, state_seconds
    from kernel.config import Link
    from kernel.domain import LinkStatus

    start = datetime(2024, 4, 1, tzinfo=UTC)
    links = [
        Link.model_validate(
            {
                "id": link_id,
                "customer": "c",
                "probes": [{"id": "icmp", "kind": "icmp", "host": "127.0.0.1", "interval": "1m"}],
            }
        )
        for link_id in ("core-1", "edge-2", "edge-3")
    ]
    samples = [s for s in generated_samples(1, start, 36) if s.probe_id == "icmp"]
    rng = random.Random(5)
    end = start + timedelta(hours=36)
    results = []
    for db in (database, timescale_db):
        shuffled = list(samples)
        rng.shuffle(shuffled)
        deriver = StateDeriver(db, links)
        for i in range(0, len(shuffled), 97):
            batch = shuffled[i : i + 97]
            await write_samples(db, batch)
            await deriver.samples_stored(batch)
        ids = [link.id for link in links]
        results.append(
            (
                await link_intervals(db, ids, start, end),
                await state_seconds(db, ids, start, end, timedelta(hours=1), start),
            )
        )
    (plain_intervals, plain_seconds), (ts_intervals, ts_seconds) = results
    assert ts_intervals == plain_intervals
    assert ts_seconds == plain_seconds
    assert any(LinkStatus.DOWN in per for per in plain_seconds.values())
    hour = plain_seconds[("core-1", start + timedelta(hours=3))]
    assert sum(hour.values(), timedelta()) == timedelta(hours=1)
