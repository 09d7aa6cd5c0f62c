"""Import of samples from another monitor's CSV export.

A file is read once, as a stream, so memory stays bounded whatever its size. The first
step (`check_file`) checks every row against the format, the configured links and probes
and the times a sample may have (`SampleTimes`), and stages each good row in a temporary
file in COPY's text format, writing nothing to the database: a file with any bad row is
rejected whole, each problem named by its line. The second (`import_samples`) COPYs the
staged rows into a staging table and, in one transaction, stores them: a file of new
samples, each once, with one plain INSERT; otherwise it refuses the file when it gives
one sample two sets of values, or gives samples stored already other values (a
correction: made only with `replace`, together with the caller's audit record), and
skips what is stored; then it derives their states. So an import is all or nothing,
samples and states alike, and importing a file twice stores it once. Rollups and the
credit ledger follow after the commit, as for live samples (the caller's part).

Rows are checked the quick way first (`_FastRow`, which only says whether a row is
good) and, when that fails, in full (`_RowParser`, which names every problem); the two
agree on what is good, as a property test checks.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import io
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.deriver import DERIVE_SLICE, derive_within
from collector.intervals import LinkSpec, effective_stale_after
from collector.queries import query
from collector.rebuild import RebuildReport, rebuild_within
from kernel.domain import Outcome, Sample, SampleTimes
from kernel.formatting import count_of
from kernel.progress import Progress

REQUIRED = ("time", "link", "probe", "outcome", "rtt_ms", "loss_pct")
OPTIONAL = ("rtt_min_ms", "rtt_max_ms", "jitter_ms", "error")
_NUMBERS = ("rtt_ms", "rtt_min_ms", "rtt_max_ms", "jitter_ms", "loss_pct")
_OUTCOMES = ", ".join(o.value for o in Outcome)
_OUTCOME_OF = {o.value: o.value for o in Outcome}
# Appended to samples_insert_import.sql: skip what is stored already or repeated.
ON_CONFLICT = "\nON CONFLICT DO NOTHING"
# Problems kept to show; beyond them only counted, so a file of nothing but bad rows
# costs no more memory than a good one.
KEPT_PROBLEMS = 1000
# Conflicts and differences shown when a file is refused for them.
SHOWN = 100


# A staged row: the samples table's columns (metrics aside), then the line.
_Row = tuple[str, str, datetime, str, Any, Any, Any, Any, Any, Any, int]


class _ProbeLike(Protocol):
    @property
    def id(self) -> str: ...


class _LinkLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def probes(self) -> Sequence[_ProbeLike]: ...


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # 1-based line in the file (the header is line 1)
    message: str


@dataclass
class FileCheck:
    """What the first pass found: the problems (the first `KEPT_PROBLEMS` of them) and
    how many rows and problems there were in all."""

    rows: int = 0  # rows that hold a sample (blank lines aside), good or bad
    bad_rows: int = 0
    problem_count: int = 0
    problems: list[RowError] = field(default_factory=list)
    _last_line: int = 0  # of the latest problem, kept or not

    def add(self, line: int, message: str) -> None:
        # Problems arrive in line order, a row's one after another.
        if self._last_line != line:
            self.bad_rows += 1
            self._last_line = line
        self.problem_count += 1
        if len(self.problems) < KEPT_PROBLEMS:
            self.problems.append(RowError(line, message))

    @property
    def ok(self) -> bool:
        return self.problem_count == 0


def check_file(
    lines: Iterable[bytes],
    links: Sequence[_LinkLike],
    times: SampleTimes,
    now: datetime,
    staged: IO[bytes] | None = None,
) -> FileCheck:
    """Check every row of a file's raw `lines`; write each good one to `staged` as a row
    of COPY's text format (what `import_samples` stores), a block at a time."""
    check = FileCheck()
    block: list[str] = []
    for text in _staged_rows(lines, links, times, now, check):
        if staged is not None:
            block.append(text)
            if len(block) == 10_000:
                staged.write("".join(block).encode())
                block = []
    if staged is not None and block:
        staged.write("".join(block).encode())
    if check.rows == 0 and check.ok:
        check.add(1, "the file has a header but no rows")
    return check


class RawLines:
    """The raw lines of a file, read as they are iterated, and the SHA-256 of all that
    was read: the digest of exactly what was imported. Tells `progress` how many bytes
    it has read, a block at a time."""

    def __init__(self, path: Path, progress: Progress | None = None) -> None:
        self.path = path
        self._digest = hashlib.sha256()
        self._progress = progress or Progress()

    def __iter__(self) -> Iterator[bytes]:
        with self.path.open("rb") as file:
            while block := file.readlines(1 << 20):
                for line in block:
                    self._digest.update(line)
                    yield line
                self._progress.update(file.tell())

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(row: _Row) -> str:
    """`row` as a line of COPY's text format: tab-separated, \\N for NULL, escaped text."""
    link, probe, at, outcome, rtt, rtt_min, rtt_max, jitter, loss, error, line = row
    numbers = "\t".join(
        _NULL if n is None else repr(n) for n in (rtt, rtt_min, rtt_max, jitter, loss)
    )
    text = _NULL if error is None else error.translate(_ESCAPES)
    return (
        f"{link.translate(_ESCAPES)}\t{probe.translate(_ESCAPES)}\t{at.isoformat()}\t"
        f"{outcome}\t{numbers}\t{text}\t{line}\n"
    )


_NULL = "\\N"


def file_rows(
    lines: Iterable[bytes],
    links: Sequence[_LinkLike],
    times: SampleTimes,
    now: datetime,
    check: FileCheck,
) -> Iterator[_Row]:
    """Each good row of the file as it is staged (the samples table's columns, metrics
    aside, then the line); each problem into `check`."""
    parse: _RowParser | None = None
    for header, record, line in _records(lines, check):
        parse = parse or _RowParser(header, links, times, now)
        row, problems = parse(record, line)
        for problem in problems:
            check.add(line, problem)
        if row is not None:
            yield row


def _staged_rows(
    lines: Iterable[bytes],
    links: Sequence[_LinkLike],
    times: SampleTimes,
    now: datetime,
    check: FileCheck,
) -> Iterator[str]:
    """`file_rows` as lines of COPY's text format. A good row takes the fast way, which
    only says whether it is good; any other is checked in full for its problems."""
    fast: _FastRow | None = None
    parse: _RowParser | None = None
    for header, record, line in _records(lines, check):
        if fast is None or parse is None:
            fast = _FastRow(header, links, times, now)
            parse = _RowParser(header, links, times, now)
        text = fast(record, line)
        if text is not None:
            yield text
            continue
        row, problems = parse(record, line)
        for problem in problems:
            check.add(line, problem)
        if row is not None:  # good after all: the fast way is only ever stricter
            yield _copy_text(row)


def _records(
    lines: Iterable[bytes], check: FileCheck
) -> Iterator[tuple[list[str], list[str], int]]:
    """(header, record, line) of each record with the header's number of fields; the
    file's problems of form (header, text, field counts) into `check`."""
    reader = csv.reader(_texts(lines, check))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        if check.ok:  # not when it was not text at all
            check.add(1, "the file is empty; expected a header line")
        return
    except csv.Error as exc:
        check.add(1, f"not CSV: {exc}")
        return
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if missing:
        check.add(1, f"missing column(s) {', '.join(missing)}; required: {', '.join(REQUIRED)}")
    if unknown:
        check.add(
            1, f"unknown column(s) {', '.join(unknown)}; allowed: {', '.join(REQUIRED + OPTIONAL)}"
        )
    if missing or unknown:
        return
    fields = len(header)
    try:
        for record in reader:
            line = reader.line_num
            if len(record) != fields:
                if not any(cell.strip() for cell in record):
                    continue  # blank lines carry nothing
                check.rows += 1
                count = count_of(len(record), "field")
                check.add(line, f"{count}, expected {fields} as in the header")
                continue
            check.rows += 1
            yield header, record, line
    except csv.Error as exc:
        check.add(reader.line_num, f"not CSV: {exc}")


def _texts(lines: Iterable[bytes], check: FileCheck) -> Iterator[str]:
    """The file's lines as text: UTF-8, a byte order mark at its start allowed; a line
    that is not UTF-8, or holds a NUL byte, is a problem of that line."""
    for number, raw in enumerate(lines, 1):
        if number == 1:
            if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                check.add(1, "the file is UTF-16 text; save it as UTF-8")
                return
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            check.add(
                number,
                f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {exc.start + 1};"
                " save the file as UTF-8",
            )
            text = raw.decode("utf-8", "replace")
        if "\x00" in text:
            column = text.index("\x00") + 1
            check.add(number, f"a NUL byte at column {column}; a CSV file holds text only")
            text = text.replace("\x00", "")
        yield text


class _FastRow:
    """A good row as a line of COPY's text format, in as few steps as Python allows; None
    for a row with any problem (or anything unusual), which `_RowParser` then names."""

    def __init__(
        self,
        header: Sequence[str],
        links: Sequence[_LinkLike],
        times: SampleTimes,
        now: datetime,
    ) -> None:
        # Each configured (link, probe) to the start of its COPY line, escaped once here.
        self._prefix = {
            link.id: {
                p.id: f"{link.id.translate(_ESCAPES)}\t{p.id.translate(_ESCAPES)}\t"
                for p in link.probes
            }
            for link in links
        }
        self._time, self._link, self._probe, self._outcome = (
            header.index(name) for name in ("time", "link", "probe", "outcome")
        )
        self._numbers = tuple(header.index(n) if n in header else -1 for n in _NUMBERS)
        self._error = header.index("error") if "error" in header else -1
        self._oldest = now - times.horizon
        self._newest = now + times.skew

    def __call__(self, record: Sequence[str], line: int) -> str | None:
        try:
            moment = datetime.fromisoformat(record[self._time].strip())
            if moment.tzinfo is None:
                return None
            moment = moment.astimezone(UTC)
            if not self._oldest <= moment <= self._newest:
                return None
            prefix = self._prefix[record[self._link].strip()][record[self._probe].strip()]
            outcome = _OUTCOME_OF[record[self._outcome].strip().lower()]
            numbers = []
            for index in self._numbers:
                cell = record[index].strip() if index >= 0 else ""
                if not cell:
                    numbers.append(_NULL)
                    continue
                value = float(cell)
                if not 0 <= value < math.inf:
                    return None
                numbers.append(repr(value))
            if numbers[4] != _NULL and float(numbers[4]) > 100:
                return None
            error = record[self._error].strip() if self._error >= 0 else ""
        except (ValueError, KeyError, OverflowError):
            return None
        text = error.translate(_ESCAPES) if error else _NULL
        values = "\t".join(numbers)
        return f"{prefix}{moment.isoformat()}\t{outcome}\t{values}\t{text}\t{line}\n"


class _RowParser:
    """Checks one record against the header's columns, the links and the accepted times."""

    def __init__(
        self,
        header: Sequence[str],
        links: Sequence[_LinkLike],
        times: SampleTimes,
        now: datetime,
    ) -> None:
        self._probes: Mapping[str, set[str]] = {
            link.id: {p.id for p in link.probes} for link in links
        }
        self._at = {name: header.index(name) for name in REQUIRED}
        self._numbers = [(n, header.index(n) if n in header else None) for n in _NUMBERS]
        self._error = header.index("error") if "error" in header else None
        self._times = times
        self._now = now

    def __call__(self, record: Sequence[str], line: int) -> tuple[_Row | None, list[str]]:
        at = self._at
        problems: list[str] = []
        observed_at = self._time(record[at["time"]].strip(), problems)
        link, probe = record[at["link"]].strip(), record[at["probe"]].strip()
        known = self._probes.get(link)
        if known is None:
            problems.append(f"unknown link {link!r}; it must be defined in the config")
        elif probe not in known:
            problems.append(
                f"link {link!r} has no probe {probe!r}; its probes: {', '.join(sorted(known))}"
            )
        cell = record[at["outcome"]]
        outcome = _OUTCOME_OF.get(cell.strip().lower())
        if outcome is None:
            problems.append(f"outcome {cell!r} is not one of {_OUTCOMES}")
        numbers = [
            None if i is None else _number(name, record[i], problems) for name, i in self._numbers
        ]
        loss = numbers[4]
        if loss is not None and loss > 100:
            problems.append(f"loss_pct {loss} is above 100")
        if problems or observed_at is None or outcome is None:
            return None, problems
        error = None if self._error is None else (record[self._error].strip() or None)
        rtt, rtt_min, rtt_max, jitter, _ = numbers
        return (
            link,
            probe,
            observed_at,
            outcome,
            rtt,
            rtt_min,
            rtt_max,
            jitter,
            loss,
            error,
            line,
        ), []

    def _time(self, text: str, problems: list[str]) -> datetime | None:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            problems.append(f"time {text!r} is not ISO 8601, e.g. 2026-11-24T10:00:00+01:00")
            return None
        if moment.tzinfo is None:
            problems.append(
                f"time {text!r} has no UTC offset; add one, e.g. {text}+01:00 or {text}Z"
            )
            return None
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:00:00-05:00 is past the last UTC date
            problems.append(f"time {text!r} is past the year 9999")
            return None
        problem = self._times.problem(moment, self._now)
        if problem is not None:
            problems.append(f"time {text!r} {problem}")
            return None
        return moment


def _number(name: str, text: str, problems: list[str]) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{name} {text!r} is not a number")
        return None
    if not math.isfinite(value) or value < 0:
        problems.append(f"{name} {text!r} must be a finite number of at least 0")
        return None
    return value


@dataclass(frozen=True, slots=True)
class Conflict:
    """A row giving a sample of the file other values than an earlier row did."""

    line: int
    first_line: int
    link_id: str
    probe_id: str
    observed_at: datetime

    @property
    def message(self) -> str:
        return (
            f"the same sample ({self.link_id} {self.probe_id} at {_iso(self.observed_at)}) as "
            f"line {self.first_line}, with other values; keep one of the two rows"
        )


@dataclass(frozen=True, slots=True)
class Difference:
    """A sample of the file that is stored already with other values."""

    line: int  # its first line in the file
    imported: Sample
    stored: Sample  # its stored metrics are kept: a CSV row carries none

    def changes(self) -> list[tuple[str, object, object]]:
        """(field, stored value, imported value) of each value that differs."""
        return [
            (name, getattr(self.stored, name), getattr(self.imported, name))
            for name in COMPARED
            if getattr(self.stored, name) != getattr(self.imported, name)
        ]


# The values an import sets, and compares with what is stored.
COMPARED = ("outcome", "rtt_ms", "rtt_min_ms", "rtt_max_ms", "jitter_ms", "loss_pct", "error")


@dataclass(frozen=True, slots=True)
class ImportedProbe:
    """What the file held of one probe."""

    link_id: str
    probe_id: str
    first: datetime
    last: datetime
    rows: int  # a sample repeated in the file counts each time


@dataclass(frozen=True, slots=True)
class Differing:
    """The file's samples stored already with other values: how many, which links, the
    span, and the first `SHOWN` of them in file order."""

    count: int
    links: tuple[str, ...]
    first: datetime
    last: datetime
    shown: tuple[Difference, ...]


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: int  # distinct samples in the file
    stored: int  # new samples
    replaced: int = 0  # stored samples whose values the file replaced
    # Stored samples the file has other values for; when not replacing, nothing was
    # written because of them.
    differing: Differing | None = None
    # Rows giving a sample other values than an earlier row: the file was refused.
    conflicts: tuple[Conflict, ...] = ()
    conflict_count: int = 0
    probes: tuple[ImportedProbe, ...] = ()
    # What deriving the states over replaced samples changed (only when some were).
    rebuilt: RebuildReport | None = None

    @property
    def unchanged(self) -> int:
        """Samples of the file stored already with the same values."""
        return self.rows - self.stored - (self.differing.count if self.differing else 0)

    @property
    def refused(self) -> bool:
        return self.conflict_count > 0 or (self.differing is not None and self.replaced == 0)


AuditRecord = Callable[[ImportReport], Awaitable[None]]


async def import_samples(
    db: Database,
    staged: IO[bytes],
    links: Sequence[LinkSpec],
    *,
    replace: bool = False,
    record: AuditRecord | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Store the samples `check_file` staged from a file it passed, and derive their
    states, in one transaction: all of it, or (on any error) none.

    A file giving one sample two sets of values, or (without `replace`) giving stored
    samples other values, is `refused`, and nothing is written. With `replace` the
    stored values are replaced, and `record(report)` runs in the same transaction before
    it commits, so a correction is never stored without its audit record, nor recorded
    without being stored. Each step tells `progress` how far it has come.
    """
    progress = progress or Progress()
    async with db.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("samples_import_create"))
        progress.stage("loading the rows", staged.seek(0, io.SEEK_END), "bytes")
        staged.seek(0)
        async with cur.copy(query("samples_import_copy")) as copy:
            while block := staged.read(1 << 20):
                await copy.write(block)
                progress.update(staged.tell())
        progress.stage("storing the samples")
        await cur.execute(query("samples_import_probes"))
        probes = tuple(ImportedProbe(*row) for row in await cur.fetchall())
        if not probes:
            return ImportReport(0, 0)
        rows = sum(p.rows for p in probes)
        differing = None
        replaced = 0
        try:
            # Most files hold only samples not stored yet, each once: then a plain INSERT
            # is all it takes, half the work of one that skips conflicts row by row.
            async with conn.transaction():  # a savepoint: on failure, as if not run
                await cur.execute(query("samples_insert_import"))
            stored = max(cur.rowcount, 0)
        except psycopg.errors.UniqueViolation:
            # Some sample is stored already, or the file repeats one: compare them.
            await cur.execute(query("samples_import_conflicting"), {"limit": SHOWN})
            found = await cur.fetchall()
            conflict_count, repeats = found[0][:2]
            rows -= repeats
            if conflict_count:
                conflicts = tuple(Conflict(*row[2:]) for row in found)
                return ImportReport(rows, 0, conflicts=conflicts, conflict_count=conflict_count)
            span = {"first": min(p.first for p in probes), "last": max(p.last for p in probes)}
            differing = await _differing(cur, span)
            if differing is not None and not replace:
                return ImportReport(rows, 0, differing=differing, probes=probes)
            if differing is not None:
                await cur.execute(query("samples_import_replace"), span)
                replaced = max(cur.rowcount, 0)
            await cur.execute(query("samples_insert_import") + ON_CONFLICT)
            stored = max(cur.rowcount, 0)
        earliest = {(p.link_id, p.probe_id): p.first for p in probes}

        async def derive() -> int:
            progress.stage("deriving states", rows, "samples")
            return await derive_within(
                conn, links, earliest, per_slice=_per_slice(probes), progress=progress
            )

        rebuilt = None
        if replaced and differing is not None:
            # From the first replaced sample to where the last stops counting.
            changed = [link for link in links if link.id in differing.links]
            stale = max(
                effective_stale_after(probe.interval, probe.stale_after)
                for link in changed
                for probe in link.probes
            )
            rebuilt = await rebuild_within(
                conn, changed, differing.first, differing.last + stale, derive
            )
        else:
            await derive()
        report = ImportReport(rows, stored, replaced, differing, probes=probes, rebuilt=rebuilt)
        if replaced and record is not None:
            await record(report)
    return report


def _per_slice(probes: Sequence[ImportedProbe]) -> dict[tuple[str, str], int]:
    """The samples each probe is expected to have in a slice of derivation, from how
    densely the file holds them (stored ones around them are not counted)."""
    slice_ = DERIVE_SLICE / timedelta(seconds=1)
    return {
        (p.link_id, p.probe_id): min(
            p.rows, math.ceil(p.rows * slice_ / max((p.last - p.first).total_seconds(), 1))
        )
        for p in probes
    }


async def _differing(cur: Any, span: Mapping[str, datetime]) -> Differing | None:
    await cur.execute(query("samples_import_differing_create"), span)
    await cur.execute(query("samples_import_differing_summary"))
    count, links, first, last = await cur.fetchone()
    if not count:
        return None
    await cur.execute(query("samples_import_differing_shown"), {"limit": SHOWN})
    shown = []
    for line, link_id, probe_id, observed_at, *values in await cur.fetchall():
        mine, theirs, metrics = values[:7], values[7:14], values[14]
        imported = Sample(link_id, probe_id, observed_at, Outcome(mine[0]), *mine[1:])
        stored = dataclasses.replace(
            Sample(link_id, probe_id, observed_at, Outcome(theirs[0]), *theirs[1:]),
            metrics=metrics or {},
        )
        shown.append(Difference(line, imported, stored))
    return Differing(int(count), tuple(sorted(links)), first, last, tuple(shown))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
