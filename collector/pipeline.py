"""The sample pipeline: probes' queue → writer → database, or the disk spool meanwhile.

`SpoolingSink` is the `SampleSink` the writer uses: a batch goes to the database while it
answers, and to the spool when a write raises DatabaseError or while the spool still holds
anything (so batches reach the database in the order they were taken). `SpoolReplayer`
drains the spool to the database in order, with backoff while the database is away, and
releases a batch only after its commit. `SamplePipeline` wires the two with a queue, a
`SampleWriter` and a `Spool`, and shuts them down so that nothing held is dropped.

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
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from collector.database import Database
from collector.spool import Spool, SpoolStatus
from collector.writer import SampleSink, SampleWriter, write_samples
from linkwatch.domain import Sample
from linkwatch.errors import DatabaseError

logger = logging.getLogger(__name__)

StoredCallback = Callable[[Sequence[Sample]], Awaitable[None]]
"""Told of each batch once it is committed; may raise DatabaseError to have it again."""


class SpoolingSink:
    """A `SampleSink` that spools what the database does not take; never raises
    DatabaseError (the spool's own failures raise `SpoolError`)."""

    def __init__(
        self, write: SampleSink, spool: Spool, *, on_stored: StoredCallback | None = None
    ) -> None:
        self._write = write
        self._spool = spool
        self._on_stored = on_stored
        self.spooled = 0  # samples sent to the spool

    async def __call__(self, samples: Sequence[Sample]) -> int:
        if not self._spool.has_pending:
            try:
                stored = await self._write(samples)
                if self._on_stored is not None:
                    await self._on_stored(samples)
                return stored
            except DatabaseError as exc:
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
    ) -> None:
        self._write = write
        self._spool = spool
        self._on_stored = on_stored
        self._min_retry_s = min_retry_delay.total_seconds()
        self._max_retry_s = max_retry_delay.total_seconds()
        self._stopping = asyncio.Event()
        self.replayed = 0  # samples newly stored from the spool
        self.records = 0  # batches replayed

    async def run(self) -> None:
        """Replay until `stop()`; a batch being written when it is called is finished."""
        delay_s = self._min_retry_s
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
                stored = await self._write(samples)
                if self._on_stored is not None:
                    await self._on_stored(samples)
            except DatabaseError as exc:
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
                continue
            await self._spool.ack(record)
            self.replayed += stored
            self.records += 1
            delay_s = self._min_retry_s
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
    ) -> None:
        self.spool = spool
        self.queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=settings.queue_size)
        self.sink = SpoolingSink(write, spool, on_stored=on_stored)
        self.writer = SampleWriter(
            self.sink, self.queue, batch_size=settings.batch_size, max_delay=settings.batch_delay
        )
        self.replayer = SpoolReplayer(
            write,
            spool,
            on_stored=on_stored,
            max_retry_delay=settings.replay_max_retry_delay,
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
        a database, a pool, or any sink with `write_samples`' contract."""
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
        return cls(spool, write, settings, on_stored=on_stored)

    def status(self) -> SpoolStatus:
        return self.spool.status()

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
