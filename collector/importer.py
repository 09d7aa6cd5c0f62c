"""Import of samples from another monitor's CSV export.

Every row is checked before anything is written: a file with any bad row is rejected
whole, with each problem reported by line number, so an import is never half-done.
Importing a file twice stores it once. A row for a sample that is stored already with
other values is a correction: without `replace` the file is refused whole and the
differences are returned; with it the stored values are replaced, in the same
transaction as the new samples and the caller's audit record. Parsing is pure; only
`import_samples` touches the database, and it never derives states (its caller does).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query
from collector.writer import copy_samples
from linkwatch.domain import Outcome, Sample
from linkwatch.formatting import count_of

REQUIRED = ("time", "link", "probe", "outcome", "rtt_ms", "loss_pct")
OPTIONAL = ("rtt_min_ms", "rtt_max_ms", "jitter_ms", "error")
_OUTCOMES = ", ".join(o.value for o in Outcome)


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


@dataclass(frozen=True, slots=True)
class ParsedFile:
    samples: list[Sample]
    errors: list[RowError]
    lines: list[int] = field(default_factory=list)  # each sample's line, in the same order


def parse_samples_csv(rows: Iterable[str], links: Sequence[_LinkLike]) -> ParsedFile:
    """Check every row against the format and the configured links and probes."""
    probes: Mapping[str, set[str]] = {link.id: {p.id for p in link.probes} for link in links}
    reader = csv.reader(rows)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return ParsedFile([], [RowError(1, "the file is empty; expected a header line")])
    except csv.Error as exc:
        return ParsedFile([], [RowError(1, f"not CSV: {exc}")])

    errors: list[RowError] = []
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if missing:
        errors.append(
            RowError(1, f"missing column(s) {', '.join(missing)}; required: {', '.join(REQUIRED)}")
        )
    if unknown:
        errors.append(
            RowError(
                1,
                f"unknown column(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(REQUIRED + OPTIONAL)}",
            )
        )
    if errors:
        return ParsedFile([], errors)

    samples: list[Sample] = []
    lines: list[int] = []
    first_seen: dict[tuple[str, str, datetime], tuple[int, Sample]] = {}
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines carry nothing
            if len(record) != len(header):
                fields = count_of(len(record), "field")
                errors.append(RowError(line, f"{fields}, expected {len(header)} as in the header"))
                continue
            sample, problems = _parse_row(dict(zip(header, record, strict=True)), probes)
            errors += [RowError(line, problem) for problem in problems]
            if sample is None:
                continue
            key = (sample.link_id, sample.probe_id, sample.observed_at)
            seen = first_seen.get(key)
            if seen is None:
                first_seen[key] = (line, sample)
                samples.append(sample)
                lines.append(line)
            elif seen[1] != sample:
                errors.append(
                    RowError(
                        line,
                        f"the same sample ({key[0]} {key[1]} at {_iso(key[2])}) as line "
                        f"{seen[0]}, with other values; keep one of the two rows",
                    )
                )
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, f"not CSV: {exc}"))
    if not samples and not errors:
        errors.append(RowError(1, "the file has a header but no rows"))
    return ParsedFile(samples, errors, lines)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_row(
    row: Mapping[str, str], probes: Mapping[str, set[str]]
) -> tuple[Sample | None, list[str]]:
    problems: list[str] = []
    observed_at = _time(row["time"].strip(), problems)
    link, probe = row["link"].strip(), row["probe"].strip()
    if link not in probes:
        problems.append(f"unknown link {link!r}; it must be defined in the config")
    elif probe not in probes[link]:
        known = ", ".join(sorted(probes[link]))
        problems.append(f"link {link!r} has no probe {probe!r}; its probes: {known}")
    outcome_text = row["outcome"].strip().lower()
    outcome = None
    try:
        outcome = Outcome(outcome_text)
    except ValueError:
        problems.append(f"outcome {row['outcome']!r} is not one of {_OUTCOMES}")
    numbers = {
        name: _number(name, row.get(name, ""), problems)
        for name in ("rtt_ms", "loss_pct", "rtt_min_ms", "rtt_max_ms", "jitter_ms")
    }
    loss = numbers["loss_pct"]
    if loss is not None and loss > 100:
        problems.append(f"loss_pct {loss} is above 100")
    if problems or observed_at is None or outcome is None:
        return None, problems
    error = (row.get("error") or "").strip() or None
    return (
        Sample(
            link_id=link,
            probe_id=probe,
            observed_at=observed_at,
            outcome=outcome,
            rtt_ms=numbers["rtt_ms"],
            rtt_min_ms=numbers["rtt_min_ms"],
            rtt_max_ms=numbers["rtt_max_ms"],
            jitter_ms=numbers["jitter_ms"],
            loss_pct=loss,
            error=error,
        ),
        [],
    )


def _time(text: str, problems: list[str]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"time {text!r} is not ISO 8601, e.g. 2026-11-24T10:00:00+01:00")
        return None
    if moment.tzinfo is None:
        problems.append(f"time {text!r} has no UTC offset; add one, e.g. {text}+01:00 or {text}Z")
        return None
    return moment.astimezone(UTC)


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
class Difference:
    """A sample of the file that is stored already with other values."""

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
class ImportReport:
    rows: int  # distinct samples in the file
    stored: int  # new samples
    replaced: int = 0  # stored samples whose values the file replaced
    # Stored samples the file has other values for; when not replacing, nothing was
    # written because of them.
    differences: tuple[Difference, ...] = ()

    @property
    def unchanged(self) -> int:
        """Samples of the file stored already with the same values."""
        return self.rows - self.stored - len(self.differences)

    @property
    def refused(self) -> bool:
        return bool(self.differences) and self.replaced == 0


AuditRecord = Callable[[ImportReport], Awaitable[None]]


async def import_samples(
    db: Database,
    samples: Sequence[Sample],
    *,
    replace: bool = False,
    record: AuditRecord | None = None,
) -> ImportReport:
    """Store parsed samples in one transaction: all of them, or (on error) none.

    Samples stored already with other values are `differences`: without `replace`
    nothing at all is written (the report is `refused`); with it their stored values are
    replaced, and `record(report)` runs in the same transaction before it commits, so a
    correction is never stored without its audit record, nor recorded without being
    stored.
    """
    if not samples:
        return ImportReport(rows=0, stored=0)
    span = {
        "first": min(s.observed_at for s in samples),
        "last": max(s.observed_at for s in samples),
    }
    async with db.connection() as conn, conn.transaction():
        await conn.execute(query("samples_incoming_create"))
        await copy_samples(conn, "samples_incoming_copy", samples)
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("samples_incoming_differing"), span)
        differences = _differences(samples, await cur.fetchall())
        if differences and not replace:
            # Nothing written: the staged rows go with the transaction's end.
            return ImportReport(rows=len(samples), stored=0, differences=differences)
        replaced = 0
        if differences:
            await cur.execute(query("samples_incoming_replace"), span)
            replaced = max(cur.rowcount, 0)
        await cur.execute(query("samples_insert_incoming"))
        report = ImportReport(
            rows=len(samples),
            stored=max(cur.rowcount, 0),
            replaced=replaced,
            differences=differences,
        )
        if replaced and record is not None:
            await record(report)
    return report


def _differences(
    samples: Sequence[Sample], rows: Sequence[tuple[Any, ...]]
) -> tuple[Difference, ...]:
    imported = {(s.link_id, s.probe_id, s.observed_at): s for s in samples}
    found = []
    for link_id, probe_id, observed_at, outcome, *values in rows:
        stored = Sample(
            link_id,
            probe_id,
            observed_at,
            Outcome(outcome),
            **dict(zip(COMPARED[1:], values[:-1], strict=True)),
            metrics=values[-1] or {},
        )
        found.append(Difference(imported[link_id, probe_id, observed_at], stored))
    return tuple(found)
