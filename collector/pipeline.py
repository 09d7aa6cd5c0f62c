"""The sample pipeline: probes' queue → writer → database, or the disk spool meanwhile.

`SpoolingSink` is the `SampleSink` the writer uses: a batch goes to the database while it
answers, and to the spool when a write raises DatabaseError, when it does not finish within
`write_timeout`, or while the spool still holds anything (so batches reach the database in
the order they were taken). `SpoolReplayer` drains the spool to the database in order,
with backoff while the database is away, and releases a batch only after its commit.
`SamplePipeline` wires the two with a queue, a `SampleWriter` and a `Spool`, and shuts
them down so that nothing held is dropped.

A database that hangs (paused, swapping, a network path that drops packets) raises
nothing: a write would wait for it indefinitely while the probes' queue filled up behind
it. So every write runs as a task of its own under a deadline, and one that overruns is
abandoned rather than awaited (psycopg cancels it on the server and closes the
connection within seconds) and its batch handled like a failed one. An abandoned write may
still commit once the server resumes; the spooled copy of the batch is then replayed over
it, which is safe because writes are idempotent and `on_stored` takes repeated batches.

`on_stored(batch)` is called after each batch's commit, live or replayed, in commit
order. Delivery is at least once: a batch replayed after a crash or after a commit whose
reply was lost may carry samples delivered before. If the callback raises DatabaseError
the batch counts as not written and is spooled (or kept) and delivered again.

Nothing here drops a sample it has taken, decides what a sample means, or writes any
table other than through `write_samples`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from collector.database import Database, DatabaseHealth
from collector.spool import Spool, SpoolStatus
from collector.writer import SampleSink, SampleWriter, write_samples
from kernel.domain import Sample
from kernel.errors import DatabaseError

logger = logging.getLogger(__name__)

StoredCallback = Callable[[Sequence[Sample]], Awaitable[None]]
"""Told of each batch once it is committed; may raise DatabaseError to have it again."""

DEFAULT_WRITE_TIMEOUT = timedelta(seconds=10)
# A replay attempt that overran gets twice the time next, up to this many write bounds:
# a database slow rather than gone still drains the spool, one batch at a time.
_REPLAY_TIMEOUT_GROWTH = 16


@dataclass(frozen=True, slots=True)
class WriteStatus:
    """Whether batches currently reach the database (for /healthz and /readyz)."""

    failing_since: datetime | None  # the first failed write of the current run of them
    cause: str | None

    @property
    def storing(self) -> bool:
        return self.failing_since is None


class _WriteHealth:
    """The outcome of the latest write, live or replayed; `on_failure` hears of each
    failure (the database watch checks at once instead of at its next round)."""

    def __init__(self, on_failure: Callable[[], None] | None) -> None:
        self._on_failure = on_failure
        self._failing_since: datetime | None = None
        self._cause: str | None = None

    def succeeded(self) -> None:
        self._failing_since = None
        self._cause = None

    def failed(self, exc: DatabaseError) -> None:
        if self._failing_since is None:
            self._failing_since = datetime.now(UTC)
        self._cause = str(exc)
        if self._on_failure is not None:
            self._on_failure()

    def status(self) -> WriteStatus:
        return WriteStatus(self._failing_since, self._cause)


class _Deadlines:
    """Runs database work under a deadline without waiting for work that overruns it.

    `asyncio.timeout` would cancel the work and then wait for it to unwind, and psycopg's
    unwinding of a query on a hung server (cancel request, wait, close) takes seconds of
    its own. Here the work is a task: past the deadline it is cancelled and left to unwind
    in the background, and the caller gets DatabaseError at once."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._abandoned: set[asyncio.Task[Any]] = set()

    async def run(self, work: Callable[[], Awaitable[int]], timeout_s: float) -> int:
        task = asyncio.ensure_future(work())
        try:
            await asyncio.wait({task}, timeout=timeout_s)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.done():
            return task.result()
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._reap)
        raise DatabaseError(
            f"{self._what} did not finish within {timeout_s:g} s: the database does not "
            "answer (hung, overloaded or cut off)"
        )

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("abandoned %s ended cause=%s", self._what, task.exception())


async def _deliver(
    write: SampleSink, on_stored: StoredCallback | None, samples: Sequence[Sample]
) -> int:
    """Write a batch and tell the subscriber: together, the work a deadline bounds."""
    stored = await write(samples)
    if on_stored is not None:
        await on_stored(samples)
    return stored


class SpoolingSink:
    """A `SampleSink` that spools what the database does not take, or not within
    `write_timeout`; never raises DatabaseError (the spool's own failures raise
    `SpoolError`)."""

    def __init__(
        self,
        write: SampleSink,
        spool: Spool,
        *,
        on_stored: StoredCallback | None = None,
        write_timeout: timedelta = DEFAULT_WRITE_TIMEOUT,
        health: _WriteHealth | None = None,
    ) -> None:
        self._write = write
        self._spool = spool
        self._on_stored = on_stored
        self._timeout_s = write_timeout.total_seconds()
        self._deadlines = _Deadlines("database write")
        self._health = health or _WriteHealth(None)
        self.spooled = 0  # samples sent to the spool

    async def __call__(self, samples: Sequence[Sample]) -> int:
        if not self._spool.has_pending:
            try:
                stored = await self._deadlines.run(
                    partial(_deliver, self._write, self._on_stored, samples), self._timeout_s
                )
                self._health.succeeded()
                return stored
            except DatabaseError as exc:
                self._health.failed(exc)
                # Logged once per outage: later batches go straight to the spool.
                logger.warning(
                    "database unavailable, spooling samples to disk samples=%d cause=%s",
                    len(samples),
                    exc,
                )
        await self._spool.append(samples)
        self.spooled += len(samples)
        return 0


class SpoolReplayer:
    """Writes the spool's batches to the database, oldest first, until stopped."""

    def __init__(
        self,
        write: SampleSink,
        spool: Spool,
        *,
        on_stored: StoredCallback | None = None,
        min_retry_delay: timedelta = timedelta(seconds=1),
        max_retry_delay: timedelta = timedelta(seconds=10),
        write_timeout: timedelta = DEFAULT_WRITE_TIMEOUT,
        health: _WriteHealth | None = None,
    ) -> None:
        self._write = write
        self._spool = spool
        self._on_stored = on_stored
        self._min_retry_s = min_retry_delay.total_seconds()
        self._max_retry_s = max_retry_delay.total_seconds()
        self._timeout_s = write_timeout.total_seconds()
        self._deadlines = _Deadlines("spool replay write")
        self._health = health or _WriteHealth(None)
        self._stopping = asyncio.Event()
        self.replayed = 0  # samples newly stored from the spool
        self.records = 0  # batches replayed

    async def run(self) -> None:
        """Replay until `stop()`; a batch being written when it is called is finished."""
        delay_s = self._min_retry_s
        timeout_s = self._timeout_s
        failing_since: float | None = None
        drained_from: tuple[float, int] | None = None  # (began, records) of this backlog
        while not self._stopping.is_set():
            if not self._spool.has_pending:
                if drained_from is not None:
                    began, records = drained_from
                    logger.info(
                        "spool drained, writing to the database directly again "
                        "records=%d took_s=%.1f",
                        self.records - records,
                        time.monotonic() - began,
                    )
                    drained_from = None
                await self._until_stopped(self._spool.wait_pending())
                continue
            if drained_from is None:
                drained_from = (time.monotonic(), self.records)
            item = await self._spool.peek()
            if item is None:
                continue
            record, samples = item
            try:
                stored = await self._deadlines.run(
                    partial(_deliver, self._write, self._on_stored, samples), timeout_s
                )
            except DatabaseError as exc:
                self._health.failed(exc)
                if failing_since is None:
                    failing_since = time.monotonic()
                    logger.warning(
                        "spool replay waiting for the database records_pending=%d cause=%s",
                        self._spool.status().records_pending,
                        exc,
                    )
                else:
                    logger.debug("spool replay failed again retry_in_s=%.1f", delay_s)
                await self._until_stopped(asyncio.sleep(delay_s))
                delay_s = min(delay_s * 2, self._max_retry_s)
                timeout_s = min(timeout_s * 2, self._timeout_s * _REPLAY_TIMEOUT_GROWTH)
                continue
            self._health.succeeded()
            await self._spool.ack(record)
            self.replayed += stored
            self.records += 1
            delay_s = self._min_retry_s
            timeout_s = self._timeout_s
            if failing_since is not None:
                logger.info(
                    "spool replay resumed, database answers again down_s=%.1f",
                    time.monotonic() - failing_since,
                )
                failing_since = None

    async def stop(self) -> None:
        """Make `run()` return after the batch in hand, if any; what is left stays spooled."""
        self._stopping.set()

    async def _until_stopped(self, waiting: Awaitable[Any]) -> None:
        """Wait for `waiting` or for `stop()`, whichever comes first."""
        task = asyncio.ensure_future(waiting)
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, stopper):
                pending.cancel()


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """How samples travel to the database, and where they wait while it is away."""

    spool_dir: Path
    spool_max_bytes: int = 1024 * 1024 * 1024
    spool_warn_pct: int = 80
    queue_size: int = 10_000  # samples held in memory before the probes wait
    batch_size: int = 5000
    batch_delay: timedelta = timedelta(seconds=1)
    replay_max_retry_delay: timedelta = timedelta(seconds=10)
    spool_segment_bytes: int | None = None  # None: sized from spool_max_bytes
    # A write (with its on_stored work) not done by then goes to the spool instead.
    write_timeout: timedelta = DEFAULT_WRITE_TIMEOUT


@dataclass(frozen=True, slots=True)
class StorageHealth:
    """Whether samples can be stored now, from what is known in memory (no query): the
    database watch's last finding and, where this process collects, its writes and spool."""

    database: DatabaseHealth
    writes: WriteStatus | None  # None where this process does not collect
    spool: SpoolStatus | None

    @property
    def ready(self) -> bool:
        """The database answers and takes the samples (the spool may still be draining)."""
        return self.database.reachable and (self.writes is None or self.writes.storing)

    def as_json(self) -> dict[str, Any]:
        """States, counts and times; never causes, which name hosts and paths."""
        db = self.database
        document: dict[str, Any] = {
            "status": "ok" if self.ready else "degraded",
            "ready": self.ready,
            "database": {
                "reachable": db.reachable,
                "since": _iso(db.since),
                "embedded": db.embedded,
                "restarts": db.restarts,
                "restart_attempts": db.restart_attempts,
                "next_restart_at": _iso(db.next_restart_at),
                "last_restart_at": _iso(db.last_restart_at),
            },
        }
        if self.writes is not None:
            document["writes"] = {
                "storing": self.writes.storing,
                "failing_since": _iso(self.writes.failing_since),
            }
        if self.spool is not None:
            document["spool"] = {
                "samples_pending": self.spool.samples_pending,
                "records_pending": self.spool.records_pending,
                "oldest_pending_at": _iso(self.spool.oldest_pending_at),
                "bytes_used": self.spool.bytes_used,
                "max_bytes": self.spool.max_bytes,
                "full": self.spool.full,
            }
        return document


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def storage_health(db: Database, pipeline: SamplePipeline | None = None) -> StorageHealth:
    return StorageHealth(
        db.health(),
        None if pipeline is None else pipeline.write_status(),
        None if pipeline is None else pipeline.status(),
    )


class SamplePipeline:
    """A queue for the probes, drained into the database, through the spool when needed.

    Make one with `open()`, put samples on `queue`, run `run()` as a task and call
    `stop()` to flush: held and queued samples are written or spooled, and whatever is
    still spooled is replayed by the next process that opens the same spool directory.
    """

    def __init__(
        self,
        spool: Spool,
        write: SampleSink,
        settings: PipelineSettings,
        *,
        on_stored: StoredCallback | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.spool = spool
        self.queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=settings.queue_size)
        self._health = _WriteHealth(on_failure)
        self.sink = SpoolingSink(
            write,
            spool,
            on_stored=on_stored,
            write_timeout=settings.write_timeout,
            health=self._health,
        )
        self.writer = SampleWriter(
            self.sink, self.queue, batch_size=settings.batch_size, max_delay=settings.batch_delay
        )
        self.replayer = SpoolReplayer(
            write,
            spool,
            on_stored=on_stored,
            max_retry_delay=settings.replay_max_retry_delay,
            write_timeout=settings.write_timeout,
            health=self._health,
        )
        self._stopped = False

    @classmethod
    async def open(
        cls,
        target: Database | AsyncConnectionPool[Any] | SampleSink,
        settings: PipelineSettings,
        *,
        on_stored: StoredCallback | None = None,
    ) -> SamplePipeline:
        """Open the spool (indexing what an earlier process left) for writes to `target`:
        a database, a pool, or any sink with `write_samples`' contract. A database hears
        of each failed write (`Database.suspect`), so its watch looks at once."""
        spool = await Spool.open(
            settings.spool_dir,
            max_bytes=settings.spool_max_bytes,
            warn_pct=settings.spool_warn_pct,
            segment_bytes=settings.spool_segment_bytes,
        )
        write: SampleSink
        if isinstance(target, Database | AsyncConnectionPool):
            write = partial(write_samples, target)
        else:
            write = target
        on_failure = target.suspect if isinstance(target, Database) else None
        return cls(spool, write, settings, on_stored=on_stored, on_failure=on_failure)

    def status(self) -> SpoolStatus:
        return self.spool.status()

    def write_status(self) -> WriteStatus:
        """Whether the latest write, live or replayed, reached the database."""
        return self._health.status()

    @property
    def stored(self) -> int:
        """Samples newly stored, directly or from the spool."""
        return self.writer.stored + self.replayer.replayed

    async def run(self) -> None:
        """Write and replay until `stop()`; then close the spool."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.writer.run(), name="sample-writer")
                group.create_task(self.replayer.run(), name="spool-replayer")
        finally:
            await self.spool.close()
            status = self.spool.status()
            logger.info(
                "sample pipeline stopped samples_stored_directly=%d samples_spooled=%d "
                "samples_replayed=%d samples_left_spooled=%d",
                self.writer.stored,
                self.sink.spooled,
                self.replayer.replayed,
                status.samples_pending,
            )

    async def stop(self) -> None:
        """Flush what the writer holds and what is queued (to the database, or else to the
        spool, past its bound if need be), then stop replaying."""
        if self._stopped:
            return
        self._stopped = True
        # The replayer may stop before the flush, which could then wait on a full spool
        # that nobody drains: better over the bound than a lost batch.
        self.spool.allow_overflow()
        await self.writer.stop()
        await self.replayer.stop()
