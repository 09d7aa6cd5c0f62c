"""How long a chunk of the TimescaleDB `samples` hypertable should be.

TimescaleDB's sizing guideline: the indexes of the chunks being written to should fit in
25 % of main memory, which is what `shared_buffers` is on a server tuned for it
(timescaledb-tune, which the official image runs at initialisation, sets it so). An
index that does not fit is written out and read back again on every insert. Samples are
written to two chunks at a time around a chunk boundary, and late samples (a spool
replayed after an outage) land in the previous one, so each chunk's indexes get half of
`shared_buffers`. Too short a chunk costs too: every chunk is a table the planner looks at,
so the interval never goes below an hour; and above a week (TimescaleDB's own default)
longer chunks only delay compression and retention.

Intervals are whole divisors of a day or whole days, so every chunk boundary is an hour
and a day boundary: a rollup bucket never spans two chunks, and retention drops whole
days. An explicit `database.chunk_interval` always wins.

Pure arithmetic: no I/O. collector/migrate.py reads the server's shared_buffers and
applies the result; `linkwatch db stats` shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from kernel.durations import format_duration

# Index bytes one stored sample adds to its chunk: the primary key (link_id, probe_id,
# observed_at) and TimescaleDB's observed_at index, with the page fill the writer leaves.
# `python -m bench.chunk_sizing` measures 101 for a day chunk (1,000 links x 2 probes
# every 30 s), 74-89 for 30 minutes to 2 hours of 10,000 links: each probe's primary-key
# entries spread over more half-full pages the more rounds a chunk holds.
SAMPLE_INDEX_BYTES = 100
# Chunks written to at once: the newest, and the previous one around its end.
CHUNKS_IN_PLAY = 2
SHORTEST = timedelta(hours=1)
LONGEST = timedelta(days=7)  # TimescaleDB's default
# Used when the ingest rate is not known (a tool opening the database without a config).
WITHOUT_RATE = timedelta(days=1)
# Every interval chosen; hours that divide a day, then whole days.
STEPS = tuple(timedelta(hours=h) for h in (1, 2, 3, 4, 6, 8, 12)) + tuple(
    timedelta(days=d) for d in range(1, 8)
)

Basis = Literal["configured", "ingest rate", "unknown rate"]


@dataclass(frozen=True, slots=True)
class ChunkSizing:
    """The chunk interval chosen, and what it was chosen from.

    `fits` is False when even the shortest interval's indexes exceed their share of
    `shared_buffers`: the server needs more memory (or a larger shared_buffers) for the
    rate its samples arrive at.
    """

    interval: timedelta
    basis: Basis
    samples_per_s: float | None = None
    shared_buffers_bytes: int | None = None
    fits: bool = True

    @property
    def index_bytes_per_chunk(self) -> float | None:
        """The indexes one chunk grows to at this rate (None without a rate)."""
        if self.samples_per_s is None:
            return None
        return self.samples_per_s * self.interval.total_seconds() * SAMPLE_INDEX_BYTES

    def describe(self) -> str:
        """The interval and why, for a log line or `db stats`."""
        interval = format_duration(self.interval)
        if self.basis == "configured":
            return f"{interval} (database.chunk_interval)"
        if self.basis == "unknown rate":
            return f"{interval} (no ingest rate known)"
        rate = self.samples_per_s or 0.0
        text = f"{interval} (sized for {rate:,.1f} samples/s"
        index = self.index_bytes_per_chunk
        if self.shared_buffers_bytes is not None and index is not None:
            text += (
                f": about {_size(index)} of index a chunk,"
                f" shared_buffers {_size(self.shared_buffers_bytes)}"
            )
        if not self.fits:
            text += "; shared_buffers is too small for this rate"
        return text + ")"


def size_chunk_interval(
    *,
    configured: timedelta | None,
    samples_per_s: float | None,
    shared_buffers_bytes: int,
) -> ChunkSizing:
    """The chunk interval for `samples`: `configured` if given, else from the ingest rate.

    The longest step whose chunk indexes (samples_per_s x interval x SAMPLE_INDEX_BYTES)
    fit in shared_buffers / CHUNKS_IN_PLAY, between SHORTEST and LONGEST.
    """
    if configured is not None:
        return ChunkSizing(configured, "configured", samples_per_s, shared_buffers_bytes)
    if samples_per_s is None:
        return ChunkSizing(WITHOUT_RATE, "unknown rate", None, shared_buffers_bytes)
    if samples_per_s < 0 or shared_buffers_bytes <= 0:
        raise ValueError(
            f"need samples_per_s >= 0 and shared_buffers_bytes > 0, got {samples_per_s} "
            f"and {shared_buffers_bytes}"
        )
    budget = shared_buffers_bytes / CHUNKS_IN_PLAY
    per_second = samples_per_s * SAMPLE_INDEX_BYTES
    fitting = [step for step in STEPS if per_second * step.total_seconds() <= budget]
    interval = fitting[-1] if fitting else SHORTEST
    return ChunkSizing(interval, "ingest rate", samples_per_s, shared_buffers_bytes, bool(fitting))


def _size(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            break
    return f"{n:.1f} {unit}"
