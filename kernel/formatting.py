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
import reprlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import ROUND_DOWN, Decimal

from kernel.money import minor_units

NBSP = "\u00a0"  # keeps a number and its unit on one line
MISSING = "—"


def count_of(n: int, noun: str, nouns: str | None = None) -> str:
    """A count with its noun in the right number: "1 link", "0 links", "1,204 samples".
    `nouns` for a plural that is not the noun plus "s" ("1 entry", "2 entries")."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


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


def elapsed(delta: timedelta) -> str:
    """A short, truncated duration: "under a minute", "12 min", "3 h 5 min", "2 d 4 h"."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return "under a minute"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}{NBSP}min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}{NBSP}h {minutes}{NBSP}min" if minutes else f"{hours}{NBSP}h"
    days, hours = divmod(hours, 24)
    return f"{days}{NBSP}d {hours}{NBSP}h" if hours else f"{days}{NBSP}d"


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


def money(amount: Decimal, currency: str, *, signed: bool = False) -> str:
    """E.g. "1,234.50 EUR", or "+25.00 EUR" with `signed`; the currency's own places."""
    places = minor_units(currency)
    sign = "+" if signed and amount > 0 else ""
    return f"{sign}{amount:,.{places}f}{NBSP}{currency}"


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
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
