"""How counts, durations, times, percentages and money read to a person: on the portal's
pages, in notifications and on the command line alike; and the command line's plain-text
tables and CSV files.

Pure functions of their arguments. Times arrive in UTC; local time appears only here,
in what a person reads, and always with its zone abbreviation. Imports no package of
ours but the kernel's own.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import reprlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Literal

from markupsafe import Markup

from kernel.money import minor_units

NBSP = "\u00a0"  # keeps a number and its unit on one line
MISSING = "—"


def count_of(n: int, noun: str, nouns: str | None = None) -> str:
    """A count with its noun in the right number: "1 link", "0 links", "1,204 samples".
    `nouns` for a plural that is not the noun plus "s" ("1 entry", "2 entries")."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


def byte_size(n: int, *, space: str = NBSP) -> str:
    """A size in bytes in binary units, one decimal: "512 B", "1.5 KiB", "2.0 GiB"."""
    if n < 1024:
        return f"{n}{space}B"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f}{space}{unit}"
        value /= 1024
    return f"{value:.1f}{space}TiB"


EXCERPT_CHARS = 200  # longer than any path, URL or name someone means to write
_EXCERPT = reprlib.Repr()  # keyword arguments only from Python 3.12
_EXCERPT.maxlevel, _EXCERPT.maxdict, _EXCERPT.maxlist = 2, 4, 4
_EXCERPT.maxstring, _EXCERPT.maxlong, _EXCERPT.maxother = EXCERPT_CHARS, 40, EXCERPT_CHARS


def excerpt(value: object) -> str:
    """`repr(value)` as a message quotes a value someone wrote: a text too long to be
    meant shows its start and says how long it was, a large list or mapping its first
    items."""
    if isinstance(value, str) and len(value) > EXCERPT_CHARS:
        return f"{value[:40]!r}... ({count_of(len(value), 'character')})"
    return _EXCERPT.repr(value)


_US_PER_UNIT = (  # the units of a duration for people, largest first
    ("d", 86_400_000_000),
    ("h", 3_600_000_000),
    ("min", 60_000_000),
    ("s", 1_000_000),
)


def duration_text(
    span: timedelta | int | Fraction,
    *,
    exact: bool = False,
    smallest: Literal["min", "s"] = "s",
    space: str = NBSP,
) -> str:
    """A duration for a person: a `timedelta`, or microseconds (an `int`, or a `Fraction`
    as the SLA engine keeps them).

    Contract: units "d", "h", "min" and "s", each after its number and `space` (a no-break
    space where a line may wrap, a plain one in command-line text, as in `decimal_pct`),
    the parts a plain space apart, a unit that is zero left out.

    - By default the two largest units from the first that is not zero, truncated, never
      rounded up: "2 d 4 h", "3 h", "12 min 5 s", "45 s"; 59.9 s is "59 s". Zero is
      "none"; a nonzero span under a second is "under 1 s".
    - `smallest="min"`, for "... ago", "in ...", "for ..." phrases: the same down to
      minutes ("3 h 5 min", "12 min"), and anything under a minute, zero included, is the
      coarse "under a minute".
    - `exact`, for the billing report, where every figure must add up: every unit that is
      not zero, microseconds ("µs") included, nothing truncated: "31 d 1 h",
      "2 min 3 s 250000 µs"; zero is "0 s". A span with a fraction of
      a microsecond cannot be shown exactly and raises ValueError; so does `exact` with
      `smallest="min"`.

    A negative span reads as its length with a leading "-" ("-5 min", "-3 h 5 min"); one
    shorter than the smallest unit shown reads as a positive one does ("under 1 s").
    """
    micros = Fraction(span // timedelta(microseconds=1) if isinstance(span, timedelta) else span)
    if micros < 0:
        text = duration_text(-micros, exact=exact, smallest=smallest, space=space)
        return text if text.startswith("under") else f"-{text}"
    if exact:
        if smallest != "s":
            raise ValueError("an exact duration shows every unit; it has no smallest one")
        if micros.denominator != 1:
            raise ValueError(f"{micros} µs is not a whole number of microseconds")
        parts = _unit_parts(int(micros), _US_PER_UNIT)
        if rest := int(micros) % 1_000_000:
            parts.append((rest, "µs"))
        return " ".join(f"{value}{space}{unit}" for value, unit in parts) or f"0{space}s"
    units = _US_PER_UNIT[:3] if smallest == "min" else _US_PER_UNIT
    if micros < units[-1][1]:
        if smallest == "min":
            return "under a minute"
        return f"under 1{space}s" if micros else "none"
    parts = _unit_parts(math.floor(micros), units)
    first = parts[0][1]
    largest = [unit for unit, _ in units].index(first)
    shown = {unit for unit, _ in units[largest : largest + 2]}
    return " ".join(f"{value}{space}{unit}" for value, unit in parts if unit in shown)


def _unit_parts(micros: int, units: Sequence[tuple[str, int]]) -> list[tuple[int, str]]:
    """`micros` in `units`, largest first, the remainder of the smallest dropped: the
    (count, unit) of every unit whose count is not zero."""
    parts = []
    for unit, size in units:
        count, micros = divmod(micros, size)
        if count:
            parts.append((count, unit))
    return parts


def local_time(moment: datetime, tz: tzinfo) -> str:
    """E.g. "2024-03-31 02:59 CEST" in the customer's time zone."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z").rstrip()


def decimal_pct(
    value: Decimal | None,
    places: int | None = None,
    *,
    space: str = NBSP,
    trim: bool = False,
) -> str:
    """A percentage (points, not a ratio) for a person, or "n/a" when there is none
    (nothing eligible was measured).

    Contract: without `places`, every digit of `value` as stored ("99.5000 %": the
    SLA engine has already truncated it). With `places`, truncated toward zero to that
    many decimals: never rounded up, so 99.49995 shows as 99.4999 and no figure claims
    more than was measured. `trim` drops trailing zeros for prose ("99.5 %", "100 %").
    `space` stands between number and sign: a no-break space where a line may wrap
    (pages, notifications), a plain one in command-line and ledger text.
    """
    if value is None:
        return "n/a"
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
    return f"{decimal_text(value) if trim else f'{value:f}'}{space}%"


def decimal_text(value: Decimal) -> str:
    """A decimal without trailing zeros: 99.5, 100, 0.25."""
    return f"{value.normalize():f}" if value != value.to_integral_value() else f"{int(value)}"


# Decimals of an availability a person reads when the contract says nothing
# (`availability_decimals`), and for figures that belong to no single contract.
DEFAULT_AVAILABILITY_DECIMALS = 3
# What the SLA engine and the ledger keep (sla.compute.truncate_pct): no display shows more.
MAX_AVAILABILITY_DECIMALS = 4


def availability_text(
    points: Decimal | Fraction | None,
    decimals: int = DEFAULT_AVAILABILITY_DECIMALS,
    *,
    space: str = NBSP,
) -> str:
    """A measured availability in percent (points, not a ratio) for a person: truncated
    toward zero to `decimals` places, every one of them shown ("99.500 %", "100.000 %"),
    so figures line up and none claims more than was measured; "n/a" when nothing
    eligible was measured. The one rule for pages, reports, e-mails and API text alike:
    the contract says `decimals` (its `availability_decimals`), the default otherwise."""
    if points is None:
        return "n/a"
    if not 0 <= decimals <= MAX_AVAILABILITY_DECIMALS:
        raise ValueError(f"{decimals} decimals: allowed are 0 to {MAX_AVAILABILITY_DECIMALS}")
    scaled = math.floor(Fraction(points) * 10**decimals)
    return f"{Decimal(scaled).scaleb(-decimals):f}{space}%"


def ratio_availability_text(
    ratio: Fraction | None, decimals: int = DEFAULT_AVAILABILITY_DECIMALS, *, space: str = NBSP
) -> str:
    """`availability_text` of a ratio (0 to 1) as the SLA engine keeps it."""
    return availability_text(None if ratio is None else ratio * 100, decimals, space=space)


def target_text(target: Decimal | int, *, space: str = NBSP) -> str:
    """A contract's availability target as the contract wrote it, trailing zeros trimmed:
    "99 %", "99.5 %", "99.95 %" (never "99.0 %")."""
    return f"{decimal_text(Decimal(target))}{space}%"


def share_text(points: Decimal | Fraction | None, *, space: str = NBSP) -> str:
    """A share in percent that is not an availability (coverage, error budget used, a
    credit's percent of the fee): truncated to two decimals, trailing zeros trimmed:
    "99.5 %", "100 %", "0.25 %"; "n/a" when there is none."""
    if points is None:
        return "n/a"
    scaled = Decimal(math.floor(Fraction(points) * 100)).scaleb(-2)
    return f"{decimal_text(scaled)}{space}%"


def met_text(met: bool | None) -> str:
    """Whether a window met its target, in the words a person uses."""
    return {True: "Target met", False: "Target missed", None: "Nothing measured"}[met]


def money(amount: Decimal, currency: str, *, signed: bool = False, space: str = NBSP) -> str:
    """E.g. "1,234.50 EUR", "4,000 JPY", or "+25.00 EUR" with `signed` (an adjustment):
    the currency's own minor units, grouped in thousands, half up. `space` as in
    `decimal_pct`."""
    places = minor_units(currency)
    shown = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "+" if signed and shown > 0 else ""
    return f"{sign}{shown:,.{places}f}{space}{currency}"


def local_span(start: datetime, end: datetime, tz: tzinfo) -> str:
    """A window or range for a person: "2026-11-01 00:00 CET to 2026-12-01 00:00 CET"."""
    return f"{local_time(start, tz)} to {local_time(end, tz)}"


# A date, with its time and zone when it has them: one unit a line must not break inside
# ("2026-" on one line, "12-14" on the next).
_DATE = re.compile(r"\d{4}-\d\d-\d\d(?: \d\d:\d\d(?::\d\d)?(?: [A-Z][A-Za-z]{1,5}|[+-]\d\d)?)?")


def nowrap_dates(text: str) -> Markup:
    """`text` for an HTML page, escaped, each date (and its time and zone) in a
    `<span class="date">` that the page's style keeps on one line."""
    out, at = Markup(""), 0
    for found in _DATE.finditer(text):
        out += text[at : found.start()]  # escaped by Markup
        out += Markup('<span class="date">{}</span>').format(found.group(0))
        at = found.end()
    return out + text[at:]


def text_table(rows: Sequence[Sequence[str]], *, right: Collection[int] = ()) -> str:
    """Rows of cells (the header first) as lines of columns two spaces apart, each as wide
    as its widest cell; columns whose index is in `right` are aligned on the right (so
    numbers line up), the others on the left. No trailing spaces, no final newline."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def csv_text(fields: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    """A CSV file for a spreadsheet or a billing system: a header of `fields`, then one
    line per row (each row's keys must be among `fields`). An absent value (None) is an
    empty cell and a boolean is "true" or "false"; lines end in "\\n"."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_cell(value) for key, value in row.items()})
    return out.getvalue()


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        # A structured field (a record's objectives) as JSON text in its one cell.
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
