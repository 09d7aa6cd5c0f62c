"""Import of samples from another monitor's CSV export.

Every row is checked before anything is written: a file with any bad row is rejected
whole, with each problem reported by line number, so an import is never half-done. Good
files go through the same idempotent write path as live samples (importing a file twice
stores it once). Parsing is pure; only `import_samples` touches the database.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from collector.database import Database
from collector.writer import write_samples
from linkwatch.domain import Outcome, Sample

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
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines carry nothing
            if len(record) != len(header):
                errors.append(
                    RowError(line, f"{len(record)} fields, expected {len(header)} as in the header")
                )
                continue
            sample, problems = _parse_row(dict(zip(header, record, strict=True)), probes)
            errors += [RowError(line, problem) for problem in problems]
            if sample is not None:
                samples.append(sample)
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, f"not CSV: {exc}"))
    if not samples and not errors:
        errors.append(RowError(1, "the file has a header but no rows"))
    return ParsedFile(samples, errors)


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
class ImportReport:
    rows: int
    stored: int  # new samples; the rest were already stored


async def import_samples(db: Database, samples: Sequence[Sample]) -> ImportReport:
    """Store parsed samples in one transaction: all of them, or (on error) none."""
    stored = await write_samples(db, samples)
    return ImportReport(rows=len(samples), stored=stored)
