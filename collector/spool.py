"""The disk spool: batches of samples kept on disk while the database is away.

An append-only log of records under one directory, in segment files rotated at a modest
size. A record is one batch of samples, framed as::

    magic "LWS1" | payload length u32 | samples u32 | oldest observed_at µs i64 | crc32 u32
    | payload (JSON)

with the CRC-32 covering the three numbers and the payload. `Spool.append` returns only
once its record is fsync'd. The consumer (the replayer) takes records in order with
`Spool.peek` and releases each with `Spool.ack` only after the batch is committed to the
database; `ack` advances a durable position file and deletes segments fully replayed.
So a crash at any point loses no acknowledged batch and at worst replays one batch twice
(the database write is idempotent).

On open, every segment is scanned: a torn record at the very end of the newest segment
(the append a crash interrupted; never acknowledged) is reported and cut off; a corrupt
record anywhere else is reported at ERROR with file and offset and skipped by resyncing
to the next valid record. Disk use is bounded: when the spool is full, `append` waits for
the replayer to free space (back-pressure) instead of dropping anything.

This module must never drop a batch it acknowledged, replay bytes that fail their
checksum, talk to the database, or block the event loop: file I/O runs in a thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import logging
import os
import struct
import time
import zlib
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from kernel.domain import Outcome, Sample
from kernel.errors import LinkwatchError

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

MAGIC = b"LWS1"
# magic, payload length, sample count, oldest observed_at (µs since the epoch), crc32
_HEADER = struct.Struct(">4sIIqI")
HEADER_SIZE = _HEADER.size
_CRC_START = 4  # the CRC covers the header after the magic, up to the CRC itself ...
_CRC_END = HEADER_SIZE - 4  # ... and then the payload
_MAX_PAYLOAD = 256 * 1024 * 1024  # larger lengths are corruption, not data
_SEGMENT_SUFFIX = ".seg"
_POSITION_FILE = "position"
_LOCK_FILE = "lock"
_FORMAT_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MIN_SEGMENT_BYTES = 64 * 1024
_MAX_SEGMENT_BYTES = 8 * 1024 * 1024


class SpoolError(LinkwatchError):
    """The spool directory cannot be used (permissions, disk full, another process)."""


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    """What the spool holds, for the NOC page and `db stats`."""

    bytes_used: int  # on disk, including replayed records not yet deleted
    max_bytes: int
    records_pending: int  # batches waiting for the database
    samples_pending: int
    oldest_pending_at: datetime | None  # the oldest sample waiting, None when empty
    warning: bool  # at or above the warning threshold
    full: bool  # an append is waiting for space

    @property
    def used_pct(self) -> float:
        return 100.0 * self.bytes_used / self.max_bytes if self.max_bytes else 0.0


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """Where one pending batch lives."""

    segment: int  # the segment's sequence number
    offset: int
    size: int  # header and payload
    samples: int
    oldest_at: datetime | None

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True, slots=True)
class _Finding:
    """Bytes that are not a valid record, found by a scan."""

    path: Path
    offset: int
    length: int
    reason: str
    torn: bool  # the interrupted last append, rather than corruption


# --- encoding ---------------------------------------------------------------------------


def encode_samples(samples: Sequence[Sample]) -> bytes:
    """A record payload: exact (µs and offset of each time, floats as repr) and compact."""
    rows = [
        [
            s.link_id,
            s.probe_id,
            s.observed_at.isoformat(timespec="microseconds"),
            s.outcome.value,
            s.rtt_ms,
            s.rtt_min_ms,
            s.rtt_max_ms,
            s.jitter_ms,
            s.loss_pct,
            s.error,
            # Optional at the end, each only when it or a later one is there.
            *([dict(s.metrics)] if s.metrics or s.agent_id else []),
            *([s.agent_id] if s.agent_id else []),
        ]
        for s in samples
    ]
    return json.dumps({"v": _FORMAT_VERSION, "samples": rows}, separators=(",", ":")).encode()


def decode_samples(payload: bytes) -> list[Sample]:
    """The samples of a payload; raises ValueError if it is not one this version wrote."""
    try:
        document = json.loads(payload)
        if document.get("v") != _FORMAT_VERSION:
            raise ValueError(f"unknown format version {document.get('v')!r}")
        return [
            Sample(
                link_id=str(row[0]),
                probe_id=str(row[1]),
                observed_at=datetime.fromisoformat(row[2]),
                outcome=Outcome(row[3]),
                rtt_ms=_float(row[4]),
                rtt_min_ms=_float(row[5]),
                rtt_max_ms=_float(row[6]),
                jitter_ms=_float(row[7]),
                loss_pct=_float(row[8]),
                error=None if row[9] is None else str(row[9]),
                # Records written before metrics existed have ten fields, before agents
                # eleven; and a sample without metrics or agent writes neither.
                metrics=_metrics(row[10]) if len(row) > 10 else {},
                agent_id=None if len(row) < 12 or row[11] is None else str(row[11]),
            )
            for row in document["samples"]
        ]
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(f"undecodable payload: {exc}") from exc


def _metrics(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object of metrics, got {value!r}")
    metrics = {}
    for name, number in value.items():
        decoded = _float(number)
        if decoded is None:
            raise TypeError(f"metric {name!r} is null")
        metrics[str(name)] = decoded
    return metrics


def _float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _frame(samples: Sequence[Sample]) -> bytes:
    payload = encode_samples(samples)
    oldest = min(s.observed_at for s in samples)
    oldest_us = (oldest - _EPOCH) // _MICROSECOND
    header = _HEADER.pack(MAGIC, len(payload), len(samples), oldest_us, 0)
    crc = zlib.crc32(payload, zlib.crc32(header[_CRC_START:_CRC_END]))
    return _HEADER.pack(MAGIC, len(payload), len(samples), oldest_us, crc) + payload


def _parse(data: bytes | memoryview, offset: int) -> tuple[int, int, int] | str:
    """(record size, sample count, oldest µs) of a valid record at `offset`, or why not."""
    if len(data) - offset < HEADER_SIZE:
        return "incomplete header"
    magic, length, count, oldest_us, crc = _HEADER.unpack_from(data, offset)
    if magic != MAGIC:
        return "no record marker"
    if length > _MAX_PAYLOAD:
        return f"implausible length {length}"
    end = offset + HEADER_SIZE + length
    if end > len(data):
        return f"length {length} runs past the end of the file"
    header = bytes(data[offset + _CRC_START : offset + _CRC_END])
    if zlib.crc32(data[offset + HEADER_SIZE : end], zlib.crc32(header)) != crc:
        return "checksum mismatch"
    return HEADER_SIZE + length, count, oldest_us


def _resync(data: bytes, start: int) -> int | None:
    """The offset of the next valid record at or after `start`."""
    at = data.find(MAGIC, start)
    while at != -1:
        if not isinstance(_parse(data, at), str):
            return at
        at = data.find(MAGIC, at + 1)
    return None


def _scan(
    path: Path, segment: int, data: bytes, start: int, *, newest: bool
) -> tuple[list[SpoolRecord], list[_Finding]]:
    """The valid records of one segment from `start`, and what was skipped."""
    records: list[SpoolRecord] = []
    findings: list[_Finding] = []
    offset = min(start, len(data))
    while offset < len(data):
        parsed = _parse(data, offset)
        if not isinstance(parsed, str):
            size, count, oldest_us = parsed
            oldest = _EPOCH + oldest_us * _MICROSECOND if count else None
            records.append(SpoolRecord(segment, offset, size, count, oldest))
            offset += size
            continue
        following = _resync(data, offset + 1)
        if following is None:
            # Nothing valid after it: in the newest segment, the append a crash cut short.
            findings.append(_Finding(path, offset, len(data) - offset, parsed, torn=newest))
            break
        findings.append(_Finding(path, offset, following - offset, parsed, torn=False))
        offset = following
    return records, findings


# --- the directory ----------------------------------------------------------------------


def _segment_name(segment: int) -> str:
    return f"{segment:012d}{_SEGMENT_SUFFIX}"


def _segments(directory: Path) -> list[tuple[int, Path]]:
    found = []
    for path in directory.glob(f"*{_SEGMENT_SUFFIX}"):
        stem = path.name[: -len(_SEGMENT_SUFFIX)]
        if stem.isdigit():
            found.append((int(stem), path))
    return sorted(found)


def _read_position(directory: Path) -> tuple[int, int]:
    """(segment, offset) of the first record not yet replayed; (0, 0) if none recorded."""
    path = directory / _POSITION_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return 0, 0
    try:
        segment, offset = (int(part) for part in text.split())
        if segment < 0 or offset < 0:
            raise ValueError("negative")
    except ValueError:
        # Replaying from the start is safe (writes are idempotent); skipping is not.
        logger.error(
            "spool position unreadable, replaying everything file=%s content=%r", path, text[:64]
        )
        return 0, 0
    return segment, offset


@dataclass(slots=True)
class _Contents:
    records: list[SpoolRecord]
    findings: list[_Finding]
    sizes: dict[int, int]  # segment -> bytes on disk
    finished: list[Path]  # segments wholly before the position
    last_segment: int


def _scan_directory(directory: Path) -> _Contents:
    """Everything pending in `directory`, read-only."""
    position_segment, position_offset = _read_position(directory)
    segments = _segments(directory)
    contents = _Contents([], [], {}, [], max([position_segment, *(s for s, _ in segments)]))
    newest = segments[-1][0] if segments else None
    for segment, path in segments:
        if segment < position_segment:
            contents.finished.append(path)
            continue
        data = path.read_bytes()
        start = position_offset if segment == position_segment else 0
        records, findings = _scan(path, segment, data, start, newest=segment == newest)
        contents.records += records
        contents.findings += findings
        contents.sizes[segment] = len(data)
    return contents


def read_pending(directory: Path) -> list[list[Sample]]:
    """The batches a spool directory holds, oldest first, without changing anything.

    For tools and tests; safe while a Linkwatch process appends (a record being written is
    seen as torn and left out). Corrupt records are left out too.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    contents = _scan_directory(directory)
    batches = []
    for record in contents.records:
        path = directory / _segment_name(record.segment)
        try:
            with path.open("rb") as handle:
                handle.seek(record.offset)
                data = handle.read(record.size)
        except FileNotFoundError:
            continue  # replayed and deleted since the scan
        batches.append(decode_samples(data[HEADER_SIZE:]))
    return batches


def inspect_spool(directory: Path, *, max_bytes: int, warn_pct: int = 80) -> SpoolStatus:
    """The status of a spool directory that another process may own (for `db stats`)."""
    directory = Path(directory)
    if not directory.is_dir():
        return SpoolStatus(0, max_bytes, 0, 0, None, False, False)
    contents = _scan_directory(directory)
    used = sum(contents.sizes.values())
    return SpoolStatus(
        bytes_used=used,
        max_bytes=max_bytes,
        records_pending=len(contents.records),
        samples_pending=sum(r.samples for r in contents.records),
        oldest_pending_at=_oldest(contents.records),
        warning=used >= max_bytes * warn_pct // 100,
        full=used >= max_bytes,
    )


def _oldest(records: Iterable[SpoolRecord]) -> datetime | None:
    times = [r.oldest_at for r in records if r.oldest_at is not None]
    return min(times) if times else None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_segment_bytes(max_bytes: int) -> int:
    """Segments small enough that replay frees space steadily, big enough to be few."""
    return max(_MIN_SEGMENT_BYTES, min(_MAX_SEGMENT_BYTES, max_bytes // 16))


class Spool:
    """A bounded, durable FIFO of sample batches in one directory.

    One process owns a spool directory at a time (an flock on `lock`). Open it with
    `Spool.open`; `append` from the producer, `peek` / `ack` from one consumer. Methods
    are for one event loop; the blocking work runs in threads.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        warn_pct: int,
        segment_bytes: int,
        lock_fd: int,
        contents: _Contents,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._warn_bytes = max_bytes * warn_pct // 100
        self._segment_bytes = segment_bytes
        self._lock_fd: int | None = lock_fd
        self._records: collections.deque[SpoolRecord] = collections.deque(contents.records)
        self._sizes = dict(contents.sizes)
        self._next_segment = contents.last_segment + 1
        self._active: int | None = None  # the segment appends go to; a fresh one per open
        self._active_fd: int | None = None
        self._append_lock = asyncio.Lock()  # one append at a time, in order
        self._io_lock = asyncio.Lock()  # appends' writes against the consumer's deletes
        self._inflight: set[asyncio.Future[Any]] = set()
        self._pending = asyncio.Event()
        self._room = asyncio.Event()
        self._overflow = False
        self._warning = False
        self._full = False
        if self._records:
            self._pending.set()
        self._check_warning()

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        directory: Path,
        *,
        max_bytes: int,
        warn_pct: int = 80,
        segment_bytes: int | None = None,
    ) -> Spool:
        """Open (creating if needed) the spool in `directory` and index what it holds."""
        if max_bytes < 1 or not 1 <= warn_pct <= 100:
            raise ValueError("need max_bytes >= 1 and 1 <= warn_pct <= 100")
        directory = Path(directory)
        lock_fd, contents = await asyncio.to_thread(cls._open_directory, directory)
        spool = cls(
            directory,
            max_bytes=max_bytes,
            warn_pct=warn_pct,
            segment_bytes=segment_bytes or default_segment_bytes(max_bytes),
            lock_fd=lock_fd,
            contents=contents,
        )
        status = spool.status()
        logger.info(
            "spool opened dir=%s records_pending=%d samples_pending=%d bytes_used=%d "
            "max_bytes=%d oldest_pending_at=%s",
            directory,
            status.records_pending,
            status.samples_pending,
            status.bytes_used,
            max_bytes,
            status.oldest_pending_at.isoformat() if status.oldest_pending_at else "none",
        )
        return spool

    @staticmethod
    def _open_directory(directory: Path) -> tuple[int, _Contents]:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot use the spool directory {directory}: {exc}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            raise SpoolError(
                f"the spool directory {directory} is in use by another Linkwatch process; "
                "give each collector its own data_dir"
            ) from None
        try:
            contents = _scan_directory(directory)
            for finding in contents.findings:
                _report(finding)
                if finding.torn:
                    # Cut the interrupted append off, so it is reported once, not per start.
                    os.truncate(finding.path, finding.offset)
                    segment = int(finding.path.name[: -len(_SEGMENT_SUFFIX)])
                    contents.sizes[segment] = finding.offset
            # Segments with nothing left to replay: wholly before the position, or whose
            # records were all replayed (the process died before deleting them).
            holding = {r.segment for r in contents.records}
            for segment in [s for s in contents.sizes if s not in holding]:
                contents.finished.append(directory / _segment_name(segment))
                del contents.sizes[segment]
            for path in contents.finished:
                path.unlink(missing_ok=True)
        except OSError as exc:
            os.close(lock_fd)
            raise SpoolError(f"cannot read the spool directory {directory}: {exc}") from exc
        return lock_fd, contents

    async def close(self) -> None:
        """Release the directory; what is pending stays for the next process."""
        async with self._io_lock:
            await asyncio.to_thread(self._close_files)

    def _close_files(self) -> None:
        self._close_active()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # -- producer ------------------------------------------------------------------------

    @property
    def has_pending(self) -> bool:
        """Whether any batch is waiting for the database (including one being replayed)."""
        return bool(self._records)

    async def append(self, samples: Sequence[Sample]) -> None:
        """Store a batch durably; returns once it is fsync'd. Waits while the spool is full."""
        if not samples:
            return
        batch = list(samples)
        frame = await asyncio.to_thread(_frame, batch)
        oldest = min(s.observed_at for s in batch)
        async with self._append_lock:
            await self._wait_for_room(len(frame), len(batch))
            record = await self._uninterrupted(self._store(frame, len(batch), oldest))
        logger.debug(
            "spool append samples=%d bytes=%d segment=%d offset=%d",
            record.samples,
            record.size,
            record.segment,
            record.offset,
        )

    async def _store(self, frame: bytes, samples: int, oldest: datetime) -> SpoolRecord:
        async with self._io_lock:
            segment = self._active
            fresh = segment is None or self._sizes[segment] + len(frame) > self._segment_bytes
            if fresh:
                segment = self._next_segment
                self._next_segment += 1
            assert segment is not None
            offset = await asyncio.to_thread(self._write, segment, fresh, frame)
            record = SpoolRecord(segment, offset, len(frame), samples, oldest)
            self._active = segment
            self._sizes[segment] = record.end
            self._records.append(record)
        self._pending.set()
        self._check_warning()
        return record

    async def _uninterrupted(self, work: Coroutine[Any, Any, _T]) -> _T:
        """Run `work` to its end even if the caller is cancelled, so that the index stays
        in step with the files (a thread's write finishes regardless)."""
        task = asyncio.ensure_future(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    def allow_overflow(self) -> None:
        """Let appends exceed the size bound from now on (for the flush at shutdown, where
        waiting for a replay that has stopped would lose the batch instead)."""
        self._overflow = True
        self._room.set()

    async def _wait_for_room(self, size: int, samples: int) -> None:
        began = time.monotonic()
        # An empty spool takes any record, so one batch larger than the bound cannot wedge.
        while not self._overflow and self.bytes_used and self.bytes_used + size > self.max_bytes:
            if not self._full:
                self._full = True
                logger.error(
                    "spool full, collector waiting for the database to take samples "
                    "(probes are held back) dir=%s bytes_used=%d max_bytes=%d "
                    "records_pending=%d waiting_samples=%d",
                    self.directory,
                    self.bytes_used,
                    self.max_bytes,
                    len(self._records),
                    samples,
                )
            self._room.clear()
            await self._room.wait()
        if self._full:
            self._full = False
            logger.info(
                "spool has room again, collector resumes dir=%s bytes_used=%d waited_s=%.1f",
                self.directory,
                self.bytes_used,
                time.monotonic() - began,
            )
        elif self._overflow and self.bytes_used + size > self.max_bytes:
            logger.warning(
                "spool over its bound at shutdown rather than lose samples dir=%s "
                "bytes_used=%d max_bytes=%d",
                self.directory,
                self.bytes_used + size,
                self.max_bytes,
            )

    def _write(self, segment: int, fresh: bool, frame: bytes) -> int:
        """Append one framed record and fsync it (in a thread, under the I/O lock); return
        the offset it starts at."""
        path = self.directory / _segment_name(segment)
        if fresh:
            self._close_active()  # every record in it is already fsync'd
            try:
                self._active_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                _fsync_directory(self.directory)  # the new name must survive a crash too
            except OSError as exc:
                raise SpoolError(f"cannot create the spool file {path}: {exc}") from exc
        assert self._active_fd is not None
        try:
            start = os.lseek(self._active_fd, 0, os.SEEK_END)
            view = memoryview(frame)
            while view:
                written = os.write(self._active_fd, view)
                view = view[written:]
            os.fdatasync(self._active_fd)
        except OSError as exc:
            # Leave no half record behind for the next append to follow.
            with contextlib.suppress(OSError):
                os.ftruncate(self._active_fd, start)
            raise SpoolError(f"cannot write to the spool file {path}: {exc}") from exc
        return start

    def _close_active(self) -> None:
        if self._active_fd is not None:
            os.close(self._active_fd)
            self._active_fd = None

    # -- consumer ------------------------------------------------------------------------

    async def wait_pending(self) -> None:
        """Return once a batch is pending."""
        await self._pending.wait()

    async def peek(self) -> tuple[SpoolRecord, list[Sample]] | None:
        """The oldest pending batch, or None when nothing is pending. A record that fails
        its checksum now is reported and skipped."""
        while self._records:
            record = self._records[0]
            samples = await asyncio.to_thread(self._read, record)
            if samples is not None:
                return record, samples
            await self._release(record)
        return None

    async def ack(self, record: SpoolRecord) -> None:
        """Forget `record` (its batch is committed): advance the durable position and
        delete segments that hold nothing pending any more."""
        if not self._records or self._records[0] != record:
            raise ValueError("ack() must name the record peek() returned")
        await self._release(record)

    def _read(self, record: SpoolRecord) -> list[Sample] | None:
        path = self.directory / _segment_name(record.segment)
        try:
            with path.open("rb") as handle:
                handle.seek(record.offset)
                data = handle.read(record.size)
            parsed = _parse(data, 0)
            if isinstance(parsed, str):
                raise ValueError(parsed)
            return decode_samples(data[HEADER_SIZE:])
        except (OSError, ValueError) as exc:
            _report(_Finding(path, record.offset, record.size, str(exc), torn=False))
            return None

    async def _release(self, record: SpoolRecord) -> None:
        await self._uninterrupted(self._forget(record))

    async def _forget(self, record: SpoolRecord) -> None:
        # Under the I/O lock: an append in flight must not see its segment deleted.
        async with self._io_lock:
            self._records.popleft()
            if self._records:
                following = self._records[0]
                position = (following.segment, following.offset)
                done = [s for s in self._sizes if s < following.segment and s != self._active]
            else:
                position = (record.segment, record.end)
                done = list(self._sizes)  # drained: the next append starts a new segment
                self._pending.clear()
            await asyncio.to_thread(self._commit, position, done)
            for segment in done:
                del self._sizes[segment]
            if self._active in done:
                self._active = None
        if done:
            self._room.set()
            self._check_warning()

    def _commit(self, position: tuple[int, int], done: list[int]) -> None:
        # The position first: segments a crash leaves behind after it are recognised as
        # replayed at the next open. The rename is not fsync'd into the directory: losing
        # it to a crash only replays batches again, which the idempotent write absorbs.
        target = self.directory / _POSITION_FILE
        temporary = target.with_suffix(".tmp")
        try:
            with temporary.open("w") as handle:
                handle.write(f"{position[0]} {position[1]}\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
            if self._active in done:
                self._close_active()
            for segment in done:
                (self.directory / _segment_name(segment)).unlink(missing_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot update the spool in {self.directory}: {exc}") from exc

    # -- status --------------------------------------------------------------------------

    @property
    def bytes_used(self) -> int:
        return sum(self._sizes.values())

    def status(self) -> SpoolStatus:
        return SpoolStatus(
            bytes_used=self.bytes_used,
            max_bytes=self.max_bytes,
            records_pending=len(self._records),
            samples_pending=sum(r.samples for r in self._records),
            oldest_pending_at=_oldest(self._records),
            warning=self._warning,
            full=self._full,
        )

    def _check_warning(self) -> None:
        used = self.bytes_used
        if used >= self._warn_bytes and not self._warning:
            self._warning = True
            logger.warning(
                "spool above its warning threshold dir=%s bytes_used=%d max_bytes=%d "
                "used_pct=%.0f records_pending=%d",
                self.directory,
                used,
                self.max_bytes,
                100.0 * used / self.max_bytes,
                len(self._records),
            )
        elif used < self._warn_bytes and self._warning:
            self._warning = False
            logger.info(
                "spool back below its warning threshold dir=%s bytes_used=%d max_bytes=%d",
                self.directory,
                used,
                self.max_bytes,
            )


def _report(finding: _Finding) -> None:
    if finding.torn:
        logger.warning(
            "spool record torn at the end of the spool (an append cut short by a crash; "
            "its samples were never acknowledged), discarded file=%s offset=%d bytes=%d "
            "reason=%s",
            finding.path,
            finding.offset,
            finding.length,
            finding.reason,
        )
    else:
        logger.error(
            "spool record corrupt, skipped file=%s offset=%d bytes=%d reason=%s",
            finding.path,
            finding.offset,
            finding.length,
            finding.reason,
        )
