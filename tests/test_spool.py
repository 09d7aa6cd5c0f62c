"""The disk spool on its own, and the spooling sink and replayer against a fake database:
exact round trips, corrupt and torn records, the size bound and its warning, order and
delivery while the database comes and goes or hangs."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.pipeline import PipelineSettings, SamplePipeline
from collector.spool import (
    HEADER_SIZE,
    Spool,
    SpoolError,
    decode_samples,
    encode_samples,
    read_pending,
)
from kernel.domain import Outcome, Sample
from kernel.errors import DatabaseError

T0 = datetime(2025, 3, 30, 0, 59, 59, 999_999, tzinfo=UTC)
LOGGER = "collector.spool"


def batch(count: int, *, start: int = 0, link: str = "link-a") -> list[Sample]:
    return [
        Sample(
            link_id=link,
            probe_id="icmp",
            observed_at=T0 + timedelta(milliseconds=250 * (start + i)),
            outcome=Outcome.UP,
            rtt_ms=1.25,
            rtt_min_ms=1.0,
            rtt_max_ms=1.5,
            jitter_ms=0.125,
            loss_pct=0.0,
        )
        for i in range(count)
    ]


def record_size(samples: Sequence[Sample]) -> int:
    return HEADER_SIZE + len(encode_samples(samples))


async def drain(spool: Spool) -> list[list[Sample]]:
    """Replay everything pending, as the replayer does after each commit."""
    batches = []
    while (item := await spool.peek()) is not None:
        record, samples = item
        batches.append(samples)
        await spool.ack(record)
    return batches


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def exact(sample: Sample) -> tuple[object, ...]:
    """Every field as stored, including the time's offset and each float's bits."""
    floats = (
        sample.rtt_ms,
        sample.rtt_min_ms,
        sample.rtt_max_ms,
        sample.jitter_ms,
        sample.loss_pct,
    )
    return (
        sample.link_id,
        sample.probe_id,
        sample.observed_at,
        sample.observed_at.utcoffset(),
        sample.outcome,
        *(None if f is None else f.hex() for f in floats),
        sample.error,
        dict(sample.metrics),
        sample.agent_id,
    )


# --- the spool ------------------------------------------------------------------------


async def test_round_trip_keeps_every_field_exactly_across_a_reopen(tmp_path: Path) -> None:
    odd = [
        Sample(
            link_id="lïnk-ü",
            probe_id="tcp/443",
            observed_at=datetime(2024, 10, 27, 1, 30, 0, 1, tzinfo=UTC),
            outcome=Outcome.DEGRADED,
            rtt_ms=0.1 + 0.2,
            rtt_min_ms=5e-324,
            rtt_max_ms=1.7976931348623157e308,
            jitter_ms=-0.0,
            loss_pct=100 / 3,
            error='refused "quoted"\nsecond line \\ ✓',
        ),
        Sample(
            link_id="b",
            probe_id="icmp",
            observed_at=datetime(
                2025, 1, 1, 5, 30, 0, 999_999, tzinfo=timezone(timedelta(hours=5, minutes=30))
            ),
            outcome=Outcome.UNKNOWN,
            error="",
        ),
        Sample("c", "http", datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), Outcome.DOWN),
    ]
    plain = batch(500, start=7)
    spool = await Spool.open(tmp_path, max_bytes=10_000_000)
    await spool.append(odd)
    await spool.append(plain)
    await spool.close()

    assert [[exact(s) for s in b] for b in read_pending(tmp_path)] == [
        [exact(s) for s in odd],
        [exact(s) for s in plain],
    ]
    spool = await Spool.open(tmp_path, max_bytes=10_000_000)
    status = spool.status()
    assert (status.records_pending, status.samples_pending) == (2, 503)
    assert status.oldest_pending_at == datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)
    replayed = await drain(spool)
    assert [[exact(s) for s in b] for b in replayed] == [
        [exact(s) for s in odd],
        [exact(s) for s in plain],
    ]
    assert spool.status().records_pending == 0
    assert segments(tmp_path) == []  # a drained spool takes no disk
    await spool.close()


@given(
    st.lists(
        st.builds(
            Sample,
            link_id=st.text(min_size=1),
            probe_id=st.text(min_size=1),
            observed_at=st.datetimes(
                timezones=st.sampled_from(
                    [UTC, timezone(timedelta(hours=-9, minutes=-30)), timezone(timedelta(hours=14))]
                )
            ),
            outcome=st.sampled_from(Outcome),
            rtt_ms=st.none() | st.floats(allow_nan=False),
            loss_pct=st.none() | st.floats(allow_nan=False, allow_infinity=False),
            error=st.none() | st.text(),
            metrics=st.dictionaries(st.text(), st.floats(allow_nan=False), max_size=2),
            agent_id=st.none() | st.text(min_size=1),
        ),
        max_size=20,
    )
)
def test_encoding_round_trips_any_sample(samples: list[Sample]) -> None:
    assert [exact(s) for s in decode_samples(encode_samples(samples))] == [
        exact(s) for s in samples
    ]


def test_records_written_before_agents_still_replay() -> None:
    # Ten fields (before metrics) and eleven (before agents), as older versions wrote.
    old = (
        b'{"v":1,"samples":[["a","b","2026-11-24T09:00:00.000000+00:00","up",1.5,null,null,'
        b'null,0.0,null],["a","b","2026-11-24T09:00:30.000000+00:00","down",null,null,null,'
        b'null,100.0,"no reply",{"ifInErrors":2.0}]]}'
    )
    first, second = decode_samples(old)
    assert (first.outcome, first.metrics, first.agent_id) == (Outcome.UP, {}, None)
    assert (second.metrics, second.agent_id) == ({"ifInErrors": 2.0}, None)


def test_not_a_number_survives_encoding() -> None:
    sample = Sample("a", "b", T0, Outcome.UP, rtt_ms=math.nan)
    [decoded] = decode_samples(encode_samples([sample]))
    assert decoded.rtt_ms is not None
    assert math.isnan(decoded.rtt_ms)


async def test_replay_position_is_durable_and_drained_segments_are_deleted(
    tmp_path: Path,
) -> None:
    spool = await Spool.open(tmp_path, max_bytes=10_000_000, segment_bytes=1)
    for i in range(4):
        await spool.append(batch(3, start=3 * i))
    assert len(segments(tmp_path)) == 4  # one record per segment at this size
    record, samples = await spool.peek() or pytest.fail("nothing pending")
    assert samples == batch(3)
    await spool.ack(record)
    assert len(segments(tmp_path)) == 3
    await spool.close()

    spool = await Spool.open(tmp_path, max_bytes=10_000_000, segment_bytes=1)
    assert await drain(spool) == [batch(3, start=3 * i) for i in (1, 2, 3)]
    await spool.close()
    spool = await Spool.open(tmp_path, max_bytes=10_000_000)
    assert spool.status().records_pending == 0
    await spool.close()


async def test_position_inside_a_segment_survives_a_reopen(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, max_bytes=10_000_000)
    for i in range(3):
        await spool.append(batch(2, start=2 * i))
    record, _ = await spool.peek() or pytest.fail("nothing pending")
    await spool.ack(record)
    await spool.close()
    assert len(segments(tmp_path)) == 1  # still holds the two pending records
    spool = await Spool.open(tmp_path, max_bytes=10_000_000)
    assert await drain(spool) == [batch(2, start=2), batch(2, start=4)]
    await spool.close()


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        pytest.param(HEADER_SIZE + 7, "checksum mismatch", id="payload-byte"),
        pytest.param(5, "", id="length-field"),
        pytest.param(0, "no record marker", id="marker"),
    ],
)
async def test_a_corrupt_record_is_reported_and_skipped_and_the_rest_replayed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: int, reason: str
) -> None:
    spool = await Spool.open(tmp_path, max_bytes=10_000_000)
    batches = [batch(4, start=4 * i) for i in range(3)]
    offsets = []
    for b in batches:
        offsets.append(spool.status().bytes_used)
        await spool.append(b)
    await spool.close()
    [segment] = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[offsets[1] + where] ^= 0xFF
    segment.write_bytes(bytes(data))

    caplog.set_level(logging.INFO, logger=LOGGER)
    spool = await Spool.open(tmp_path, max_bytes=10_000_000)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors
    assert "spool record corrupt, skipped" in errors[0]
    assert f"file={segment} offset={offsets[1]} bytes={offsets[2] - offsets[1]}" in errors[0]
    assert reason in errors[0]
    assert await drain(spool) == [batches[0], batches[2]]
    await spool.close()


async def test_a_record_corrupted_after_it_was_appended_is_skipped_at_replay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = await Spool.open(tmp_path, max_bytes=10_000_000)
    await spool.append(batch(2))
    second_at = spool.status().bytes_used
    await spool.append(batch(2, start=2))
    await spool.append(batch(2, start=4))
    [segment] = segments(tmp_path)
    with segment.open("r+b") as handle:
        handle.seek(second_at + HEADER_SIZE + 3)
        handle.write(b"#")
    caplog.set_level(logging.ERROR, logger=LOGGER)
    assert await drain(spool) == [batch(2), batch(2, start=4)]
    assert f"spool record corrupt, skipped file={segment} offset={second_at}" in caplog.text
    await spool.close()


@pytest.mark.parametrize("cut", [3, HEADER_SIZE - 1, HEADER_SIZE + 10], ids=str)
async def test_a_torn_last_record_is_reported_and_never_replayed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, cut: int
) -> None:
    spool = await Spool.open(tmp_path, max_bytes=10_000_000)
    await spool.append(batch(5))
    await spool.append(batch(5, start=5))
    last_at = spool.status().bytes_used
    await spool.append(batch(5, start=10))
    await spool.close()
    [segment] = segments(tmp_path)
    with segment.open("r+b") as handle:
        handle.truncate(last_at + cut)  # as if killed during the write

    assert read_pending(tmp_path) == [batch(5), batch(5, start=5)]
    caplog.set_level(logging.INFO, logger=LOGGER)
    spool = await Spool.open(tmp_path, max_bytes=10_000_000)
    torn = [r for r in caplog.records if "spool record torn" in r.getMessage()]
    assert [r.levelno for r in torn] == [logging.WARNING]
    assert f"file={segment} offset={last_at} bytes={cut}" in torn[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert segment.stat().st_size == last_at  # cut off: reported once, not at every start
    await spool.append(batch(1, start=99))  # appends go on after a crash
    assert await drain(spool) == [batch(5), batch(5, start=5), batch(1, start=99)]
    await spool.close()


async def test_full_spool_makes_append_wait_until_replay_frees_space(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    size = record_size(batch(10))
    spool = await Spool.open(tmp_path, max_bytes=3 * size, warn_pct=50, segment_bytes=1)
    for i in range(3):
        await spool.append(batch(10, start=10 * i))
    assert spool.status().bytes_used == 3 * size

    fourth = asyncio.create_task(spool.append(batch(10, start=30)))
    await asyncio.sleep(0.3)
    assert not fourth.done()  # back-pressure, not a drop
    assert spool.status().full
    full = [r for r in caplog.records if "spool full" in r.getMessage()]
    assert [r.levelno for r in full] == [logging.ERROR]

    record, _ = await spool.peek() or pytest.fail("nothing pending")
    await spool.ack(record)  # its segment is deleted: room for one more
    await asyncio.wait_for(fourth, timeout=5)
    assert not spool.status().full
    assert "spool has room again" in caplog.text
    assert await drain(spool) == [batch(10, start=10 * i) for i in (1, 2, 3)]
    await spool.close()


async def test_a_batch_larger_than_the_bound_still_goes_into_an_empty_spool(
    tmp_path: Path,
) -> None:
    spool = await Spool.open(tmp_path, max_bytes=100)
    await asyncio.wait_for(spool.append(batch(50)), timeout=5)
    assert await drain(spool) == [batch(50)]
    await spool.close()


async def test_warning_fires_once_per_crossing_of_the_threshold(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    size = record_size(batch(10))
    spool = await Spool.open(tmp_path, max_bytes=10 * size, warn_pct=30, segment_bytes=1)

    def warnings() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING and "warning threshold" in r.getMessage()
        ]

    await spool.append(batch(10))
    await spool.append(batch(10, start=10))
    assert warnings() == []
    assert not spool.status().warning
    await spool.append(batch(10, start=20))  # 30 %: crossing
    for i in range(3, 6):
        await spool.append(batch(10, start=10 * i))  # still above: no repeat
    assert len(warnings()) == 1
    assert "used_pct=30" in warnings()[0]
    assert spool.status().warning

    await drain(spool)
    assert not spool.status().warning
    assert "spool back below its warning threshold" in caplog.text
    for i in range(3):
        await spool.append(batch(10, start=100 + 10 * i))  # the next crossing warns again
    assert len(warnings()) == 2
    await spool.close()


async def test_a_cancelled_append_leaves_the_spool_consistent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    spool = await Spool.open(tmp_path, max_bytes=10_000_000)
    await spool.append(batch(3))
    for delay in (0, 0.0005, 0.001, 0.002, 0.005):
        append = asyncio.create_task(spool.append(batch(3, start=3)))
        await asyncio.sleep(delay)
        append.cancel()
        await asyncio.gather(append, return_exceptions=True)
    await spool.append(batch(3, start=6))
    replayed = await drain(spool)
    # A cancelled append is either wholly there or not at all; nothing is corrupt.
    assert replayed[0] == batch(3)
    assert replayed[-1] == batch(3, start=6)
    assert all(b == batch(3, start=3) for b in replayed[1:-1])
    assert caplog.records == []
    await spool.close()


async def test_a_second_process_cannot_use_the_same_spool(tmp_path: Path) -> None:
    spool = await Spool.open(tmp_path, max_bytes=1000)
    with pytest.raises(SpoolError, match="in use by another Linkwatch process"):
        await Spool.open(tmp_path, max_bytes=1000)
    await spool.close()
    await (await Spool.open(tmp_path, max_bytes=1000)).close()


# --- sink and replayer with a fake database ---------------------------------------------


class FakeDatabase:
    """Stores samples by identity while `up`; raises DatabaseError like the real one."""

    def __init__(self) -> None:
        self.up = True
        self.rows: dict[tuple[str, str, datetime], Sample] = {}
        self.attempts = 0

    async def write(self, samples: Sequence[Sample]) -> int:
        self.attempts += 1
        await asyncio.sleep(0)
        if not self.up:
            raise DatabaseError("database fake: connection refused")
        new = 0
        for s in samples:
            key = (s.link_id, s.probe_id, s.observed_at)
            if key not in self.rows:
                self.rows[key] = s
                new += 1
        return new


def settings(directory: Path, **changes: object) -> PipelineSettings:
    base: dict[str, object] = {
        "spool_dir": directory,
        "spool_max_bytes": 10_000_000,
        "batch_size": 10,
        "batch_delay": timedelta(milliseconds=20),
        "replay_max_retry_delay": timedelta(milliseconds=200),
    }
    base.update(changes)
    return PipelineSettings(**base)  # type: ignore[arg-type]


async def wait_until(condition: object, timeout_s: float = 10) -> None:
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.02)


async def test_batches_spool_while_the_database_is_away_and_replay_in_order(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    delivered: list[Sample] = []

    async def on_stored(samples: Sequence[Sample]) -> None:
        delivered.extend(samples)

    pipeline = SamplePipeline(
        await Spool.open(tmp_path, max_bytes=10_000_000),
        db.write,
        settings(tmp_path),
        on_stored=on_stored,
    )
    task = asyncio.create_task(pipeline.run())
    samples = batch(300)
    for s in samples[:100]:
        await pipeline.queue.put(s)
    await wait_until(lambda: len(db.rows) == 100)
    db.up = False
    for s in samples[100:200]:
        await pipeline.queue.put(s)
    await wait_until(lambda: pipeline.sink.spooled == 100)
    assert pipeline.status().samples_pending == 100
    db.up = True
    for s in samples[200:]:  # while the spool drains, these queue up behind it
        await pipeline.queue.put(s)
    await wait_until(lambda: len(db.rows) == 300 and not pipeline.spool.has_pending)
    await pipeline.stop()
    await task
    assert delivered == samples  # every sample, once, in the order taken
    assert pipeline.writer.dropped == 0


async def test_stop_with_the_database_away_spools_everything_for_the_next_process(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    db.up = False
    pipeline = SamplePipeline(
        await Spool.open(tmp_path, max_bytes=10_000_000),
        db.write,
        settings(tmp_path, batch_delay=timedelta(hours=1), batch_size=1000),
    )
    task = asyncio.create_task(pipeline.run())
    samples = batch(57)
    for s in samples:
        await pipeline.queue.put(s)  # held by the writer or still queued at stop
    await pipeline.stop()
    await task
    assert pipeline.writer.dropped == 0
    assert [s for b in read_pending(tmp_path) for s in b] == samples

    db.up = True
    later = await SamplePipeline.open(db.write, settings(tmp_path))
    assert later.status().samples_pending == 57
    task = asyncio.create_task(later.run())
    await wait_until(lambda: len(db.rows) == 57)
    await later.stop()
    await task
    assert read_pending(tmp_path) == []


async def test_a_full_spool_holds_the_probes_back_and_shutdown_still_keeps_everything(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    db.up = False
    size = record_size(batch(10))
    pipeline = SamplePipeline(
        await Spool.open(tmp_path, max_bytes=2 * size, segment_bytes=1),
        db.write,
        settings(tmp_path, queue_size=100),
    )
    task = asyncio.create_task(pipeline.run())
    samples = batch(250)
    producer = asyncio.create_task(_put_all(pipeline.queue, samples))
    await asyncio.sleep(0.5)
    assert not producer.done()  # the queue is full and the writer waits for space
    assert pipeline.spool.status().full
    await pipeline.stop()  # flushes past the bound rather than dropping
    await asyncio.wait_for(task, 5)
    producer.cancel()
    spooled = [s for b in read_pending(tmp_path) for s in b]
    assert spooled == samples[: len(spooled)]
    assert len(spooled) >= 100 + 20  # what the queue held plus what the spool holds


async def _put_all(queue: asyncio.Queue[Sample], samples: list[Sample]) -> None:
    for s in samples:
        await queue.put(s)


async def test_a_batch_whose_subscriber_fails_is_delivered_again(tmp_path: Path) -> None:
    db = FakeDatabase()
    calls: list[int] = []

    async def flaky_subscriber(samples: Sequence[Sample]) -> None:
        calls.append(len(samples))
        if len(calls) == 1:
            raise DatabaseError("database fake: state table unavailable")

    pipeline = SamplePipeline(
        await Spool.open(tmp_path, max_bytes=10_000_000),
        db.write,
        settings(tmp_path),
        on_stored=flaky_subscriber,
    )
    task = asyncio.create_task(pipeline.run())
    for s in batch(10):
        await pipeline.queue.put(s)
    await wait_until(lambda: len(calls) == 2)
    assert calls == [10, 10]
    await pipeline.stop()
    await task
    assert not pipeline.spool.has_pending


class HungDatabase(FakeDatabase):
    """A fake database that stops answering (every write waits) while `hung`; a write
    that was waiting when it resumes commits, as a paused server's would."""

    def __init__(self) -> None:
        super().__init__()
        self.answering = asyncio.Event()
        self.answering.set()
        self.cancelled = 0

    async def write(self, samples: Sequence[Sample]) -> int:
        try:
            await self.answering.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return await super().write(samples)


async def test_a_write_that_hangs_is_spooled_after_its_bound_and_the_probes_never_wait(
    tmp_path: Path,
) -> None:
    db = HungDatabase()
    delivered: list[Sample] = []

    async def on_stored(samples: Sequence[Sample]) -> None:
        delivered.extend(samples)

    pipeline = SamplePipeline(
        await Spool.open(tmp_path, max_bytes=10_000_000),
        db.write,
        settings(tmp_path, queue_size=100, write_timeout=timedelta(milliseconds=200)),
        on_stored=on_stored,
    )
    task = asyncio.create_task(pipeline.run())
    samples = batch(400)
    for s in samples[:50]:
        await pipeline.queue.put(s)
    await wait_until(lambda: len(db.rows) == 50)
    assert pipeline.write_status().storing

    db.answering.clear()
    began = asyncio.get_running_loop().time()
    for s in samples[50:350]:  # three times what the queue holds: it must keep draining
        await asyncio.wait_for(pipeline.queue.put(s), timeout=1)
    await wait_until(lambda: pipeline.status().samples_pending == 300)
    assert asyncio.get_running_loop().time() - began < 3
    status = pipeline.write_status()
    assert not status.storing
    assert status.cause is not None
    assert "did not finish within 0.2 s" in status.cause
    assert db.cancelled >= 1  # the overrunning write was abandoned, not awaited

    db.answering.set()
    for s in samples[350:]:
        await pipeline.queue.put(s)
    await wait_until(lambda: len(db.rows) == 400 and not pipeline.spool.has_pending)
    assert pipeline.write_status().storing
    await pipeline.stop()
    await task
    assert sorted(delivered, key=lambda s: s.observed_at) == samples  # each once, all of them
    assert delivered == samples  # and in the order taken


async def test_replay_gives_a_slow_database_longer_each_time_until_a_batch_goes_through(
    tmp_path: Path,
) -> None:
    """A database slower than the write bound (not gone) still drains the spool."""
    db = FakeDatabase()

    async def slow_write(samples: Sequence[Sample]) -> int:
        await asyncio.sleep(0.5)  # every write needs 0.5 s; the bound is 0.1 s
        return await db.write(samples)

    pipeline = SamplePipeline(
        await Spool.open(tmp_path, max_bytes=10_000_000),
        slow_write,
        settings(tmp_path, write_timeout=timedelta(milliseconds=100)),
    )
    task = asyncio.create_task(pipeline.run())
    for s in batch(10):
        await pipeline.queue.put(s)
    # Live: 0.1 s, then spooled; replays: 0.1, 0.2, 0.4, then 0.8 s is enough.
    await wait_until(lambda: not pipeline.spool.has_pending and pipeline.sink.spooled == 10)
    assert len(db.rows) == 10
    await pipeline.stop()
    await task
