"""Housekeeping and `db stats`: sample retention in bounded batches on plain PostgreSQL,
rollups kept longer, TimescaleDB's policies reported, and the stats table on both engines.

The TimescaleDB tests run on the machine's PostgreSQL 15 when the extension is installed
there and skip otherwise.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.database import Database
from collector.deriver import StateDeriver
from collector.housekeeping import (
    DEFAULT_ROLLUP_RETENTION,
    DbStats,
    database_stats,
    render_stats,
    run_housekeeping,
)
from collector.intervals import END_OF_TIME
from collector.rollups import materialize_rollups, rollups
from collector.settings import StorageSettings
from collector.spool import SpoolStatus
from collector.writer import write_samples
from kernel.domain import Outcome, Sample
from tests.builders import LinkSpec, ProbeSpec

# The `timescale_db` fixture (conftest) keeps raw samples this long.
TS_RETENTION = timedelta(days=36_500)

NOW = datetime(2024, 6, 15, 12, 34, 56, tzinfo=UTC)
RETENTION = timedelta(days=30)
# NOW - 30 days is 2024-05-16 12:34:56; the cutoff is the start of that UTC day.
CUTOFF = datetime(2024, 5, 16, tzinfo=UTC)


def settings_for(db: Database, retention: timedelta = RETENTION) -> StorageSettings:
    return StorageSettings(url=None, data_dir=Path("."), retention=retention)


def every(start: datetime, end: datetime, step: timedelta, link: str) -> list[Sample]:
    found = []
    when = start
    while when < end:
        found.append(Sample(link, "icmp", when, Outcome.UP, rtt_ms=float(when.minute)))
        when += step
    return found


async def stored_times(db: Database) -> set[tuple[str, datetime]]:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT link_id, observed_at FROM samples")
        return set(await cur.fetchall())


async def test_retention_deletes_exactly_the_samples_before_the_cutoff_in_batches(
    database: Database,
) -> None:
    batch = every(
        datetime(2024, 5, 12, tzinfo=UTC),
        datetime(2024, 5, 20, tzinfo=UTC),
        timedelta(minutes=10),
        "a",
    )
    batch += every(datetime(2024, 5, 14, tzinfo=UTC), NOW, timedelta(hours=1), "b")
    # Right at the edge: one microsecond before the cutoff goes, the cutoff itself stays.
    batch += [
        Sample("c", "icmp", CUTOFF - timedelta(microseconds=1), Outcome.DOWN),
        Sample("c", "icmp", CUTOFF, Outcome.DOWN),
    ]
    await write_samples(database, batch)
    everything = {(s.link_id, s.observed_at) for s in batch}
    old = {(link, t) for link, t in everything if t < CUTOFF}

    report = await run_housekeeping(database, settings_for(database), NOW, batch_size=100)

    assert report.engine == "postgresql"
    assert report.samples_cutoff == CUTOFF
    assert await stored_times(database) == everything - old
    assert report.samples_deleted == len(old) == 4 * 144 + 2 * 24 + 1
    assert report.sample_batches == len(old) // 100 + 1
    assert report.complete
    assert report.oldest_sample == CUTOFF
    assert report.rollups_cutoff == datetime(2019, 6, 16, tzinfo=UTC)
    assert report.rollups_materialized_until == {
        "hour": datetime(2024, 6, 15, 12, tzinfo=UTC),
        "day": datetime(2024, 6, 15, tzinfo=UTC),
    }
    assert "samples_deleted=625" in report.summary()

    # The deleted samples were rolled up first: their days still report.
    days = await rollups(
        database, ["a", "b", "c"], datetime(2024, 5, 12, tzinfo=UTC), CUTOFF, "day"
    )
    assert sum(r.samples_received for r in days) == len(old)

    again = await run_housekeeping(database, settings_for(database), NOW, batch_size=100)
    assert (again.samples_deleted, again.sample_batches) == (0, 1)


async def test_a_bounded_run_leaves_only_newer_rows_and_the_next_one_finishes(
    database: Database,
) -> None:
    batch = every(
        datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 17, tzinfo=UTC), timedelta(hours=1), "a"
    )
    await write_samples(database, batch)
    report = await run_housekeeping(
        database, settings_for(database), NOW, batch_size=50, max_batches=3
    )
    assert (report.samples_deleted, report.sample_batches, report.complete) == (150, 3, False)
    # Oldest first: what is left is everything from the 151st sample on.
    left = sorted(t for _, t in await stored_times(database))
    assert left == [s.observed_at for s in batch[150:]]

    report = await run_housekeeping(database, settings_for(database), NOW, batch_size=50)
    assert report.complete
    assert report.samples_deleted == 15 * 24 - 150
    assert report.oldest_sample == CUTOFF


async def test_rollups_outlive_samples_until_their_own_retention(database: Database) -> None:
    old = every(
        datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC), timedelta(hours=1), "a"
    )
    older = every(
        datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC), timedelta(hours=1), "a"
    )
    await write_samples(database, old + older)
    span = (datetime(2024, 2, 1, tzinfo=UTC), NOW)
    before = await rollups(database, ["a"], *span, "day")
    assert [r.bucket_start.day for r in before] == [1, 1]

    report = await run_housekeeping(
        database, settings_for(database), NOW, rollup_retention=timedelta(days=60), batch_size=7
    )
    assert report.rollups_cutoff == datetime(2024, 4, 16, tzinfo=UTC)
    assert report.samples_deleted == 48
    assert report.rollups_deleted == 1 + 24  # March 1st: its day and its 24 hours
    assert await stored_times(database) == set()
    # May 1st lost its samples but keeps its rollups; March 1st is gone altogether.
    assert await rollups(database, ["a"], *span, "day") == before[1:]
    assert len(await rollups(database, ["a"], *span, "hour")) == 24

    with pytest.raises(ValueError, match="at least the sample retention"):
        await run_housekeeping(
            database, settings_for(database), NOW, rollup_retention=timedelta(days=29)
        )
    assert timedelta(days=5 * 365) <= DEFAULT_ROLLUP_RETENTION


def spool_status(bytes_used: int, max_bytes: int, samples: int) -> SpoolStatus:
    oldest = None if not samples else datetime(2026, 11, 24, 9, 58, tzinfo=UTC)
    return SpoolStatus(bytes_used, max_bytes, samples // 100, samples, oldest, False, False)


async def test_stats_on_plain_postgresql(database: Database) -> None:
    empty = await database_stats(database, now=NOW)
    assert (empty.oldest_sample, empty.newest_sample, empty.lag, empty.spool) == (
        None,
        None,
        None,
        None,
    )
    assert "Oldest sample  none" in render_stats(empty)

    batch = every(
        datetime(2024, 6, 15, tzinfo=UTC),
        datetime(2024, 6, 15, 12, 30, tzinfo=UTC),
        timedelta(minutes=1),
        "a",
    )
    await write_samples(database, batch)
    stats = await database_stats(
        database, spool_status=spool_status(3 * 1024 * 1024, 512 * 1024 * 1024, 1234), now=NOW
    )
    assert stats.timescaledb_version is None
    tables = {r.name: r for r in stats.relations}
    assert {"samples", "rollups", "rollup_watermarks", "schema_migrations"} <= set(tables)
    samples = tables["samples"]
    assert (samples.kind, samples.rows, samples.rows_exact) == ("table", len(batch), True)
    assert samples.index_bytes > 0
    assert samples.total_bytes >= samples.table_bytes + samples.index_bytes
    assert samples.chunks is None
    assert stats.oldest_sample == batch[0].observed_at
    assert stats.newest_sample == batch[-1].observed_at
    assert stats.lag == timedelta(minutes=5, seconds=56)
    assert stats.database_bytes > 0

    text = render_stats(stats)
    assert "(5 min 56 s ago)" in text
    assert "3.0 MiB of 512.0 MiB (0.6 %), 1,234 samples waiting since 2026-11-24 09:58:00" in text
    assert "rollups maintained by Linkwatch" in text
    header = next(line for line in text.splitlines() if line.startswith("Table"))
    assert header.split() == ["Table", "Kind", "Rows", "Data", "Indexes", "Total"]
    row = next(line for line in text.splitlines() if line.startswith("samples "))
    assert row.split()[:3] == ["samples", "table", "750"]

    # Over the size limit the planner's estimate is shown, marked as such.
    async with database.connection() as conn:
        await conn.execute("ANALYZE samples")
    estimated = await database_stats(database, now=NOW, exact_count_max_bytes=0)
    samples = next(r for r in estimated.relations if r.name == "samples")
    assert (samples.rows, samples.rows_exact) == (len(batch), False)
    assert "~750" in render_stats(estimated)


async def test_stats_list_the_probes_whose_states_cannot_be_derived(database: Database) -> None:
    assert re.search(
        r"^States +derived for every probe$",
        render_stats(await database_stats(database, now=NOW)),
        re.M,
    )
    link = LinkSpec(
        "edge-7", (ProbeSpec("icmp", interval=timedelta(seconds=30), stale_after=None),)
    )
    batch = [
        Sample("edge-7", "icmp", NOW, Outcome.UP),
        Sample("edge-7", "icmp", END_OF_TIME, Outcome.UP),
    ]
    await write_samples(database, batch)
    await StateDeriver(database, [link]).samples_stored(batch)
    stats = await database_stats(database, now=NOW)
    [failure] = stats.state_failures
    assert (failure.link_id, failure.probe_id) == ("edge-7", "icmp")
    text = render_stats(stats)
    assert re.search(r"^States +1 probe cannot be derived, listed below$", text, re.M)
    line = next(line for line in text.splitlines() if line.startswith("  link edge-7 "))
    assert line.startswith("  link edge-7  probe icmp  since 20")
    assert line.endswith(
        "ValueError: the sample of probe icmp at 9999-12-31T23:59:59.999999+00:00 is at the "
        "last moment a time can hold, so its outcome holds for no time; it cannot be right: "
        "remove or correct it"
    )


# -- TimescaleDB --------------------------------------------------------------------------


@pytest.mark.timescaledb
async def test_timescaledb_housekeeping_reports_the_policy_and_drops_old_rollup_chunks(
    timescale_db: Database,
) -> None:
    now = datetime.now(UTC)
    year = timedelta(days=365)
    ancient = every(now - 3 * year, now - 3 * year + timedelta(days=1), timedelta(hours=1), "a")
    recent = every(now - timedelta(days=2), now - timedelta(days=1), timedelta(hours=1), "a")
    await write_samples(timescale_db, ancient + recent)

    # The database's own policy keeps samples 100 years (so the three-year-old ones are
    # still there to roll up); rollups are kept two years.
    report = await run_housekeeping(
        timescale_db, settings_for(timescale_db, year), now, rollup_retention=2 * year
    )

    assert report.engine == "timescaledb"
    assert report.samples_deleted == report.sample_batches == report.rollups_deleted == 0
    assert report.retention_policy is not None
    assert report.retention_policy.drop_after == TS_RETENTION
    assert "retention_policy_drop_after=36500 days" in report.summary()
    # Raw samples are the policy's business: all still there.
    assert len(await stored_times(timescale_db)) == len(ancient) + len(recent)
    assert report.oldest_sample == ancient[0].observed_at
    # Both periods were materialized, then the three-year-old rollup chunks dropped.
    assert report.rollup_chunks_dropped >= 2
    assert report.rollups_materialized_until["day"] is not None
    found = await rollups(timescale_db, ["a"], now - 4 * year, now, "day")
    assert {r.bucket_start.date() for r in found} == {s.observed_at.date() for s in recent}


@pytest.mark.timescaledb
async def test_stats_on_timescaledb(timescale_db: Database) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    batch = every(now - timedelta(days=3), now - timedelta(seconds=30), timedelta(minutes=5), "a")
    await write_samples(timescale_db, batch)
    async with timescale_db.connection() as conn:
        cur = await conn.execute(
            "SELECT count(compress_chunk(c))"
            " FROM show_chunks('samples', older_than => now() - interval '1 day') c"
        )
        (compressed,) = await cur.fetchone() or (0,)
    assert compressed >= 1
    await materialize_rollups(timescale_db, now)

    stats = await database_stats(
        timescale_db, spool_status=spool_status(0, 512 * 1024 * 1024, 0), now=now
    )
    assert isinstance(stats, DbStats)
    assert stats.timescaledb_version
    relations = {r.name: r for r in stats.relations}
    samples = relations["samples"]
    assert samples.kind == "hypertable"
    assert (samples.rows, samples.rows_exact) == (len(batch), True)
    assert samples.chunks is not None
    assert samples.chunks >= 3
    assert samples.compressed_chunks == compressed
    assert samples.bytes_before_compression
    assert samples.bytes_after_compression
    assert samples.total_bytes > 0
    for view in ("samples_hourly", "samples_daily"):
        assert relations[view].kind == "continuous aggregate"
        assert relations[view].rows_exact
        assert relations[view].rows
    assert relations["rollups"].rows == 0  # the plain-PostgreSQL table stays empty here
    assert stats.lag == timedelta(minutes=5)

    text = render_stats(stats)
    assert "TimescaleDB " in text
    header = next(line for line in text.splitlines() if line.startswith("Table"))
    assert header.split()[-2:] == ["Chunks", "Compressed"]
    row = next(line for line in text.splitlines() if line.startswith("samples "))
    assert f"{compressed} chunk{'' if compressed == 1 else 's'}" in row
    assert " -> " in row
    assert "Spool          0 B of 512.0 MiB (0.0 %), 0 samples waiting" in text


@pytest.mark.timescaledb
async def test_a_refresh_waits_out_a_policy_refresh_of_the_same_window(
    timescale_db: Database,
) -> None:
    """TimescaleDB 2.26.3 on refuses a refresh that overlaps one in progress (the policy
    job's, say) instead of waiting: ours waits its turn, and the buckets are there."""
    now = datetime.now(UTC).replace(microsecond=0)
    batch = every(now - timedelta(hours=6), now - timedelta(seconds=30), timedelta(minutes=5), "a")
    await write_samples(timescale_db, batch)
    async with timescale_db.connection() as holder, timescale_db.connection() as conn:
        # A refresh in progress, as another session registers it: the whole range, for
        # both aggregates, by a live backend.
        await conn.execute(
            "INSERT INTO _timescaledb_catalog.continuous_aggs_jobs_refresh_ranges"
            " (materialization_id, start_range, end_range, pid, job_id, created_at)"
            " SELECT mat_hypertable_id, -9223372036854775807, 9223372036854775807,"
            " %(pid)s, 0, now() FROM _timescaledb_catalog.continuous_agg",
            {"pid": holder.info.backend_pid},
        )

        async def finish_the_other_refresh() -> None:
            await asyncio.sleep(1.5)
            await conn.execute(
                "DELETE FROM _timescaledb_catalog.continuous_aggs_jobs_refresh_ranges"
            )

        ours = asyncio.create_task(materialize_rollups(timescale_db, now))
        await finish_the_other_refresh()
        await ours
    found = await rollups(timescale_db, ["a"], now - timedelta(hours=7), now, "hour")
    assert len(found) >= 5
