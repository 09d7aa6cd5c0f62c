"""The TimescaleDB chunk interval chosen from the ingest rate and shared_buffers.

The interval applied on a real TimescaleDB is tested in tests/test_storage_timescaledb.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from collector.chunking import (
    CHUNKS_IN_PLAY,
    SAMPLE_INDEX_BYTES,
    STEPS,
    ChunkSizing,
    size_chunk_interval,
)

MIB = 2**20
GIB = 2**30
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ISP = 10_000 * 2 / 30  # 10,000 links x 2 probes every 30 s
DEMO = 5 / 30  # the demo's five probes every 30 s


@pytest.mark.parametrize(
    ("samples_per_s", "shared_buffers", "configured", "interval", "basis", "fits"),
    [
        pytest.param(ISP, 128 * MIB, 2 * HOUR, 2 * HOUR, "configured", True, id="configured-wins"),
        pytest.param(None, 128 * MIB, None, DAY, "unknown rate", True, id="no-rate-known"),
        pytest.param(0.0, 128 * MIB, None, 7 * DAY, "ingest rate", True, id="no-probes"),
        pytest.param(DEMO, 128 * MIB, None, 7 * DAY, "ingest rate", True, id="demo"),
        # An hour of 666.7 samples/s is about 183 MiB of index: more than 64 MiB.
        pytest.param(ISP, 128 * MIB, None, HOUR, "ingest rate", False, id="isp-128MiB-too-small"),
        pytest.param(ISP, 1 * GIB, None, 2 * HOUR, "ingest rate", True, id="isp-1GiB"),
        pytest.param(ISP, 4 * GIB, None, 8 * HOUR, "ingest rate", True, id="isp-4GiB"),
        pytest.param(ISP, 16 * GIB, None, DAY, "ingest rate", True, id="isp-16GiB"),
        pytest.param(ISP, 256 * GIB, None, 7 * DAY, "ingest rate", True, id="isp-longest"),
        # 1,000 links x 1 probe / 60 s: 16.7 samples/s, 5.7 MiB of index an hour.
        pytest.param(1000 / 60, 128 * MIB, None, 8 * HOUR, "ingest rate", True, id="small-isp"),
    ],
)
def test_named_cases(
    samples_per_s: float | None,
    shared_buffers: int,
    configured: timedelta | None,
    interval: timedelta,
    basis: str,
    fits: bool,
) -> None:
    sizing = size_chunk_interval(
        configured=configured, samples_per_s=samples_per_s, shared_buffers_bytes=shared_buffers
    )
    assert (sizing.interval, sizing.basis, sizing.fits) == (interval, basis, fits)


def test_a_chunk_whose_indexes_exactly_fit_is_taken_and_one_byte_more_is_not() -> None:
    budget = 1 * GIB // CHUNKS_IN_PLAY
    exact = budget / (12 * 3600 * SAMPLE_INDEX_BYTES)  # 12 h of samples: exactly the budget
    at = size_chunk_interval(configured=None, samples_per_s=exact, shared_buffers_bytes=GIB)
    assert at.interval == 12 * HOUR
    assert at.index_bytes_per_chunk == budget
    over = size_chunk_interval(configured=None, samples_per_s=exact, shared_buffers_bytes=GIB - 2)
    assert over.interval == 8 * HOUR


def test_every_interval_lines_up_with_hours_and_days() -> None:
    # A rollup bucket never spans two chunks, and retention drops whole days.
    for step in STEPS:
        assert DAY % step == timedelta(0) or step % DAY == timedelta(0), step
    rates = [0.0, 0.01, 1, 33.3, ISP, 5_000, 100_000]
    memories = [16 * MIB, 128 * MIB, GIB, 8 * GIB, 64 * GIB]
    for rate in rates:
        for memory in memories:
            chosen = size_chunk_interval(
                configured=None, samples_per_s=rate, shared_buffers_bytes=memory
            ).interval
            assert chosen in STEPS
    # More memory never shortens the chunks; a higher rate never lengthens them.
    for rate in rates:
        by_memory = [
            size_chunk_interval(configured=None, samples_per_s=rate, shared_buffers_bytes=m)
            for m in memories
        ]
        assert [s.interval for s in by_memory] == sorted(s.interval for s in by_memory)
    for memory in memories:
        by_rate = [
            size_chunk_interval(configured=None, samples_per_s=r, shared_buffers_bytes=memory)
            for r in rates
        ]
        assert [s.interval for s in by_rate] == sorted((s.interval for s in by_rate), reverse=True)


def test_descriptions_say_what_the_interval_came_from() -> None:
    sized = size_chunk_interval(configured=None, samples_per_s=ISP, shared_buffers_bytes=4 * GIB)
    assert sized.describe() == (
        "8h (sized for 666.7 samples/s: about 1.8 GiB of index a chunk, shared_buffers 4.0 GiB)"
    )
    small = size_chunk_interval(configured=None, samples_per_s=ISP, shared_buffers_bytes=128 * MIB)
    assert small.describe().endswith("; shared_buffers is too small for this rate)")
    assert ChunkSizing(2 * HOUR, "configured").describe() == "2h (database.chunk_interval)"
    assert ChunkSizing(DAY, "unknown rate").describe() == "1d (no ingest rate known)"


def test_impossible_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="samples_per_s >= 0"):
        size_chunk_interval(configured=None, samples_per_s=-1, shared_buffers_bytes=GIB)
    with pytest.raises(ValueError, match="shared_buffers_bytes > 0"):
        size_chunk_interval(configured=None, samples_per_s=1, shared_buffers_bytes=0)
