"""Sample writes: idempotent batches, the writer task, and database outages."""

from __future__ import annotations

import asyncio
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from collector.database import Database, connect
from collector.embedded import EmbeddedPostgres
from collector.settings import StorageSettings
from collector.writer import SAMPLE_COLUMNS, SampleWriter, write_samples
from kernel.domain import Outcome, Sample
from kernel.errors import DatabaseError

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


def _samples(count: int, *, link: str = "link-a", start: int = 0) -> list[Sample]:
    return [
        Sample(
            link_id=link,
            probe_id="icmp",
            observed_at=T0 + timedelta(seconds=30 * (start + i)),
            outcome=Outcome.UP if i % 3 else Outcome.DOWN,
            rtt_ms=1.5 + i,
            rtt_min_ms=1.0,
            rtt_max_ms=2.0 + i,
            jitter_ms=0.25,
            loss_pct=0.0 if i % 3 else 100.0,
            error=None if i % 3 else "timeout",
        )
        for i in range(count)
    ]


async def _stored(db: Database) -> list[Sample]:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT link_id, probe_id, observed_at, outcome, rtt_ms, rtt_min_ms, rtt_max_ms,"
            " jitter_ms, loss_pct, error FROM samples ORDER BY link_id, probe_id, observed_at"
        )
        rows = await cur.fetchall()
    return [
        Sample(r[0], r[1], r[2], Outcome(r[3]), r[4], r[5], r[6], r[7], r[8], r[9]) for r in rows
    ]


async def test_every_sample_field_is_written_to_its_column_of_that_type(
    database: Database,
) -> None:
    assert [name for name, _ in SAMPLE_COLUMNS] == [f.name for f in fields(Sample)]
    async with database.connection() as conn:
        cur = await conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'samples'::regclass AND attnum > 0 AND NOT attisdropped"
        )
        table = dict(await cur.fetchall())
        for name, copy_type in SAMPLE_COLUMNS:
            cur = await conn.execute("SELECT format_type(%s::regtype, NULL)", [copy_type])
            row = await cur.fetchone()
            assert row is not None
            assert table.get(name) == row[0], name


async def test_a_batch_written_twice_is_stored_once(database: Database) -> None:
    batch = _samples(10)
    assert await write_samples(database, batch) == 10
    assert await write_samples(database, batch) == 0
    assert await _stored(database) == batch


async def test_a_batch_overlapping_stored_samples_counts_only_new_ones(database: Database) -> None:
    await write_samples(database, _samples(10))
    assert await write_samples(database, _samples(10, start=5)) == 5
    assert len(await _stored(database)) == 15


async def test_duplicates_within_one_batch_are_stored_once(database: Database) -> None:
    batch = _samples(4)
    assert await write_samples(database, [*batch, batch[0], batch[2]]) == 4
    assert await _stored(database) == batch


async def test_an_empty_batch_writes_nothing(database: Database) -> None:
    assert await write_samples(database, []) == 0


async def test_write_through_a_plain_pool(database: Database) -> None:
    assert await write_samples(database.pool, _samples(3)) == 3


async def test_writer_flushes_what_it_holds_on_stop(database: Database) -> None:
    queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=100)
    # Neither size nor time would write these: only stop() does.
    writer = SampleWriter.to_database(
        database, queue, batch_size=1000, max_delay=timedelta(hours=1)
    )
    task = asyncio.create_task(writer.run(), name="sample-writer")
    batch = _samples(7)
    for sample in batch[:5]:
        await queue.put(sample)
    await asyncio.sleep(0.05)  # the writer now holds those five
    for sample in batch[5:]:
        queue.put_nowait(sample)  # and these two are still queued
    await writer.stop()
    await task
    assert await _stored(database) == batch
    assert (writer.received, writer.stored, writer.dropped) == (7, 7, 0)


async def test_writer_writes_full_batches_without_waiting(database: Database) -> None:
    queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=10)
    writer = SampleWriter.to_database(database, queue, batch_size=5, max_delay=timedelta(hours=1))
    task = asyncio.create_task(writer.run(), name="sample-writer")
    for sample in _samples(25):  # more than the queue holds: put() waits for the writer
        await queue.put(sample)
    await asyncio.wait_for(queue.join(), timeout=5)
    assert writer.stored == 25
    await writer.stop()
    await task


async def test_writer_writes_a_partial_batch_after_max_delay(database: Database) -> None:
    queue: asyncio.Queue[Sample] = asyncio.Queue()
    writer = SampleWriter.to_database(
        database, queue, batch_size=500, max_delay=timedelta(milliseconds=100)
    )
    task = asyncio.create_task(writer.run(), name="sample-writer")
    for sample in _samples(3):
        queue.put_nowait(sample)
    began = time.monotonic()
    await asyncio.wait_for(queue.join(), timeout=5)
    assert 0.05 < time.monotonic() - began < 2
    assert len(await _stored(database)) == 3
    await writer.stop()
    await task


async def test_stopped_server_gives_database_error_and_writes_resume_after_restart(
    pg_data_dir: Path,
) -> None:
    server = EmbeddedPostgres(pg_data_dir, durable=False)
    url = server.start()
    db = await connect(StorageSettings(url=url, data_dir=pg_data_dir), acquire_timeout_s=1)
    try:
        assert await write_samples(db, _samples(3)) == 3
        await asyncio.to_thread(server.stop)

        with pytest.raises(DatabaseError) as caught:
            await write_samples(db, _samples(3, start=3))
        assert not isinstance(caught.value, psycopg.Error)
        assert db.name in str(caught.value)
        assert "No such file or directory" in str(caught.value)  # the cause, not a timeout

        await asyncio.to_thread(server.start)
        deadline = time.monotonic() + 15
        while True:  # the pool reconnects with backoff
            try:
                assert await write_samples(db, _samples(3, start=3)) == 3
                break
            except DatabaseError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        assert len(await _stored(db)) == 6
    finally:
        await db.close()
        server.stop()


async def test_writer_retries_a_batch_through_an_outage(pg_data_dir: Path) -> None:
    server = EmbeddedPostgres(pg_data_dir, durable=False)
    url = server.start()
    db = await connect(StorageSettings(url=url, data_dir=pg_data_dir), acquire_timeout_s=1)
    queue: asyncio.Queue[Sample] = asyncio.Queue()
    writer = SampleWriter.to_database(db, queue, batch_size=3)
    task = asyncio.create_task(writer.run(), name="sample-writer")
    try:
        await asyncio.to_thread(server.stop)
        for sample in _samples(3):
            queue.put_nowait(sample)
        await asyncio.sleep(1.5)  # at least one failed attempt
        assert writer.stored == 0
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(queue.join(), timeout=20)
        assert len(await _stored(db)) == 3
    finally:
        await writer.stop()
        await task
        await db.close()
        server.stop()
