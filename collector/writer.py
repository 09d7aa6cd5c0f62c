"""Sample writes: idempotent batch inserts and the writer task that feeds them.

`write_samples` stores a batch with COPY into a staging table and one
`INSERT ... ON CONFLICT DO NOTHING`, so a sample written twice is stored once and a failed
batch leaves nothing behind (retrying it is safe). `SampleWriter` drains the probes' queue
into such batches. Nothing here derives status or touches other tables.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import cache, partial
from operator import attrgetter
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from collector.database import Database, database_errors, describe_pool
from collector.queries import query
from kernel.domain import Sample
from kernel.errors import DatabaseError

logger = logging.getLogger(__name__)

# The samples table's columns a write fills, in the order each row is written, with the
# type binary COPY needs up front. Each is the `Sample` field of the same name. The COPY
# and INSERT statements (samples_copy, samples_incoming_copy, samples_insert_incoming)
# and the staging table (samples_incoming_create) take their column lists from here: a
# new column is its migration, its `Sample` field and one entry here.
SAMPLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("link_id", "text"),
    ("probe_id", "text"),
    ("observed_at", "timestamptz"),
    ("outcome", "text"),
    ("rtt_ms", "float8"),
    ("rtt_min_ms", "float8"),
    ("rtt_max_ms", "float8"),
    ("jitter_ms", "float8"),
    ("loss_pct", "float8"),
    ("error", "text"),
    ("metrics", "jsonb"),
    ("agent_id", "text"),
)
_COPY_TYPES = [copy_type for _, copy_type in SAMPLE_COLUMNS]
_SAMPLE_FIELDS = attrgetter(*(name for name, _ in SAMPLE_COLUMNS))  # one C call a row
_OUTCOME_AT = [name for name, _ in SAMPLE_COLUMNS].index("outcome")
_METRICS_AT = [name for name, _ in SAMPLE_COLUMNS].index("metrics")

SampleSink = Callable[[Sequence[Sample]], Awaitable[int]]
"""Where batches go: stores them and returns how many were new; raises DatabaseError."""


@asynccontextmanager
async def _connection(
    target: Database | AsyncConnectionPool[Any],
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    if isinstance(target, Database):
        async with target.connection() as conn:
            yield conn
    else:
        with database_errors(describe_pool(target)):
            async with target.connection() as conn:
                yield conn


async def write_samples(
    target: Database | AsyncConnectionPool[Any], samples: Sequence[Sample]
) -> int:
    """Store `samples`, skipping any already stored; return how many were newly stored."""
    if not samples:
        return 0
    began = time.monotonic()
    async with _connection(target) as conn:
        try:
            # Fast path: COPY straight into the table, the way psql \copy does. Almost
            # every live batch is new; a duplicate aborts the COPY, which discards the
            # batch whole, and the staged path below then skips what is stored.
            async with conn.transaction():
                await copy_samples(conn, "samples_copy", samples)
            stored = len(samples)
        except psycopg.errors.UniqueViolation:
            async with conn.transaction():
                await conn.execute(_with_columns("samples_incoming_create"))
                await copy_samples(conn, "samples_incoming_copy", samples)
                cur = await conn.execute(_with_columns("samples_insert_incoming"))
                stored = max(cur.rowcount, 0)
    logger.debug(
        "samples written batch=%d stored=%d took_ms=%.1f",
        len(samples),
        stored,
        (time.monotonic() - began) * 1000,
    )
    return stored


async def copy_samples(
    conn: psycopg.AsyncConnection[Any], statement: str, samples: Sequence[Sample]
) -> None:
    """COPY `samples` with `statement` (samples_copy or samples_incoming_copy)."""
    async with conn.cursor().copy(_with_columns(statement)) as copy:
        copy.set_types(_COPY_TYPES)
        for s in samples:
            await copy.write_row(_row(s))


@cache
def _with_columns(statement: str) -> sql.Composed:
    """The named statement with its `{columns}` (and `{column_defs}`, each with its type)
    filled from SAMPLE_COLUMNS: identifiers composed by psycopg, as they cannot be bound
    parameters; the types are this module's own constants."""
    columns = sql.SQL(", ").join(sql.Identifier(name) for name, _ in SAMPLE_COLUMNS)
    column_defs = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(copy_type))
        for name, copy_type in SAMPLE_COLUMNS
    )
    return sql.SQL(query(statement)).format(columns=columns, column_defs=column_defs)


def _row(sample: Sample) -> list[object]:
    """`sample` as the row COPY writes: its field for each column, the outcome as text and
    the metrics as jsonb."""
    row = list(_SAMPLE_FIELDS(sample))
    row[_OUTCOME_AT] = sample.outcome.value
    row[_METRICS_AT] = _metrics(sample.metrics)
    return row


def _metrics(metrics: Mapping[str, float]) -> dict[str, float] | None:
    """The jsonb value of a sample's metrics: NULL when it has none. JSON has no NaN or
    infinity, so such a value is left out rather than failing the whole batch."""
    if not metrics:
        return None
    return {name: value for name, value in metrics.items() if math.isfinite(value)} or None


class SampleWriter:
    """Drains a bounded queue of samples into batched writes.

    A batch is written when it reaches `batch_size` samples or when its oldest sample has
    waited `max_delay`. While the database is away the current batch is retried with
    backoff and the queue fills up: producers then wait in `queue.put()` (back-pressure)
    rather than memory growing without bound. `stop()` writes everything held and queued.

    The sink is the seam for surviving longer outages: `collector.pipeline.SpoolingSink`
    wraps `write_samples` in a sink that spools a batch when it raises DatabaseError or
    overruns its deadline (and is replayed later), so it never raises DatabaseError and
    never waits on a hung database, and the retry and give-up-at-shutdown path below is
    never taken. Only a bare database sink can drop at shutdown, or wait without bound.
    """

    def __init__(
        self,
        sink: SampleSink,
        queue: asyncio.Queue[Sample],
        *,
        batch_size: int = 500,
        max_delay: timedelta = timedelta(seconds=1),
        max_retry_delay: timedelta = timedelta(seconds=30),
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._sink = sink
        self._queue = queue
        self._batch_size = batch_size
        self._max_delay_s = max_delay.total_seconds()
        self._max_retry_delay_s = max_retry_delay.total_seconds()
        self._stopping = asyncio.Event()
        self._done = asyncio.Event()
        self._running = False
        self.received = 0  # samples taken from the queue
        self.stored = 0  # samples newly stored (duplicates are not counted)
        self.dropped = 0  # samples given up at shutdown because the database was away

    @classmethod
    def to_database(
        cls,
        target: Database | AsyncConnectionPool[Any],
        queue: asyncio.Queue[Sample],
        **options: Any,
    ) -> SampleWriter:
        """A writer whose batches go straight to `write_samples(target, ...)`."""
        return cls(partial(write_samples, target), queue, **options)

    async def run(self) -> None:
        """Write batches until `stop()`; then write what is held and queued, and return."""
        self._running = True
        stop_waiter = asyncio.create_task(self._stopping.wait(), name="sample-writer-stop")
        try:
            while not self._stopping.is_set():
                batch = await self._collect(stop_waiter)
                if batch:
                    await self._write(batch)
            while batch := self._take_queued(self._batch_size):
                await self._write(batch)
        finally:
            stop_waiter.cancel()
            self._done.set()

    async def stop(self) -> None:
        """Ask `run()` to flush and finish, and wait until it has."""
        self._stopping.set()
        if self._running:
            await self._done.wait()

    async def _collect(self, stop_waiter: asyncio.Task[Any]) -> list[Sample]:
        first = await self._next(stop_waiter, None)
        if first is None:
            return []
        batch = [first]
        # Fixed deadline from the first sample: a trickle of samples cannot delay it.
        deadline = time.monotonic() + self._max_delay_s
        while len(batch) < self._batch_size:
            batch += self._take_queued(self._batch_size - len(batch))
            remaining = deadline - time.monotonic()
            if len(batch) >= self._batch_size or remaining <= 0:
                break
            item = await self._next(stop_waiter, remaining)
            if item is None:
                break
            batch.append(item)
        return batch

    def _take_queued(self, limit: int) -> list[Sample]:
        taken: list[Sample] = []
        while len(taken) < limit and not self._queue.empty():
            taken.append(self._queue.get_nowait())
        self.received += len(taken)
        return taken

    async def _next(self, stop_waiter: asyncio.Task[Any], wait_s: float | None) -> Sample | None:
        """The next sample, or None on timeout or stop."""
        if not self._queue.empty():
            self.received += 1
            return self._queue.get_nowait()
        getter = asyncio.ensure_future(self._queue.get())
        try:
            await asyncio.wait(
                {getter, stop_waiter}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not getter.done():
                # Cancelling a waiting Queue.get() leaves any item in the queue.
                getter.cancel()
        await asyncio.wait({getter})
        if getter.cancelled():
            return None
        self.received += 1
        return getter.result()

    async def _write(self, batch: list[Sample]) -> None:
        delay_s = 1.0
        last_attempt = False
        while True:
            try:
                self.stored += await self._sink(batch)
                break
            except DatabaseError as exc:
                if last_attempt:
                    self.dropped += len(batch)
                    logger.error(
                        "samples dropped at shutdown, database unavailable samples=%d cause=%s",
                        len(batch),
                        exc,
                    )
                    break
                logger.warning(
                    "sample write failed, retrying samples=%d retry_in_s=%.0f cause=%s",
                    len(batch),
                    delay_s,
                    exc,
                )
                # A stop during the wait gets one more attempt, then gives the batch up.
                last_attempt = await self._stop_requested_within(delay_s)
                delay_s = min(delay_s * 2, self._max_retry_delay_s)
        for _ in batch:
            self._queue.task_done()

    async def _stop_requested_within(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return False
        return True
