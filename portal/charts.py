"""Server-side SVG for the portal: line charts over time, the 90-day bar and budget meters.

Pure: figures in, markup out. Nothing here does I/O, reads a clock or knows who is looking.
Every text that reaches the SVG is escaped with markupsafe, every number is formatted
here, and colours come from CSS classes (the stylesheet's light and dark variables), never
from style attributes, so the Content-Security-Policy holds and the charts follow the
theme. A chart never joins points across missing data: a gap in the data is a gap in the
line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from markupsafe import Markup, escape

# The drawing's own units; the SVG scales to its container's width.
WIDTH = 560
HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 10, 30  # LEFT: the least; wider y labels widen it
# The font sizes link.css gives chart text, in the drawing's units: on wide screens, and
# on phones, where the drawing is shrunk to ~60 % and its text must stay readable.
FONT_WIDE, FONT_NARROW = 12, 18
LABEL_GAP = 6  # between a y label and the plot
# Above this many buckets, one hover target covers several buckets (the page stays light).
MAX_TARGETS = 180

Formatter = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Series:
    """One line: a value per bucket start; None or a missing bucket is no data."""

    label: str  # legend text: "mean", "p95", "in", "out"
    tone: str  # CSS class suffix: "a" (main), "b" (second), "c" (third)
    points: tuple[tuple[datetime, float | None], ...]


@dataclass(frozen=True, slots=True)
class TimeAxis:
    """[start, end) in buckets of `step`, labelled in `tz`."""

    start: datetime
    end: datetime
    step: timedelta
    tz: tzinfo


@dataclass(frozen=True, slots=True)
class DayCell:
    """One day of the availability bar."""

    day: date
    tone: str  # up, minor, major, unknown, maintenance, none
    label: str  # the day's figures in one line: the cell's <title> and accessible name
    detail: tuple[str, str]  # the same, in two short lines, shown on focus or hover


# --- numbers --------------------------------------------------------------------------------


def number(value: float, places: int = 2) -> str:
    """A short number: at most `places` decimals, trailing zeros dropped."""
    if not math.isfinite(value):
        return "—"
    text = f"{value:,.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above `value` (a y axis top)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exponent = math.floor(math.log10(value))
    for mantissa in (1.0, 2.0, 2.5, 5.0, 10.0):
        top = mantissa * 10.0**exponent
        if top >= value * (1 - 1e-9):
            return top
    return 10.0 ** (exponent + 1)


def _trusted(parts: Sequence[str]) -> Markup:
    """Markup this module built: every text interpolated into it went through escape(),
    every number through a formatter, so it is safe as it is."""
    return Markup("".join(parts))  # noqa: S704 - see the docstring


def _coord(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


# Advance widths in em of DejaVu Sans, the widest of the common sans-serif faces (and
# Debian's default): a label measured with them fits in whichever face the browser picks.
_EM = {
    **dict.fromkeys("0123456789", 0.64), **dict.fromkeys(" \u00a0.,:;", 0.32),
    "%": 0.95, "m": 0.98, "M": 0.87, "W": 0.99, "w": 0.82, "—": 1.0, "–": 0.5, "-": 0.36,
    "/": 0.34, "i": 0.28, "l": 0.28, "j": 0.28, "f": 0.36, "t": 0.4, "r": 0.42, "J": 0.3,
    "I": 0.3,
}  # fmt: skip


def text_width(text: str, font: float) -> float:
    """About how wide `text` is at `font` units, erring wide (unknown letters: 0.7 em)."""
    return font * sum(_EM.get(ch, 0.7) for ch in text)


def _spread(
    ticks: Sequence[tuple[float, str]], font: float, left: float, right: float
) -> list[tuple[float, str]]:
    """Axis labels centred under their ticks at `font`, each moved inside [left, right]
    when it would stick out (the first day's label clear of the y axis's "0 %"), and
    one left out whenever it would touch the one before it."""
    placed: list[tuple[float, str]] = []
    end = -math.inf
    for x, text in ticks:
        half = text_width(text, font) / 2
        centre = min(max(x, left + half), right - half)
        if centre - half < end + font / 2:
            continue
        placed.append((centre, text))
        end = centre + half
    return placed


# --- time ticks -------------------------------------------------------------------------------


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    # Through UTC, so a zone that skips midnight lands on the day's first instant.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC).astimezone(tz)


def time_ticks(start: datetime, end: datetime, tz: tzinfo) -> list[tuple[datetime, str]]:
    """Ticks in local time, about four to eight of them: every 3 hours for a day, every
    midnight for a week, Mondays for a month, the 1st and 16th for a quarter."""
    span = end - start
    ticks: list[tuple[datetime, str]] = []
    if span <= timedelta(days=2):
        moment = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        while moment < end:
            local = moment.astimezone(tz)
            if moment >= start and local.minute == 0 and local.hour % 3 == 0:
                text = local.strftime("%a %d") if local.hour == 0 else local.strftime("%H:%M")
                ticks.append((moment, text))
            moment += timedelta(minutes=30)  # zones with half-hour offsets still get ticks
        return ticks
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    while day <= last:
        midnight = _local_midnight(day, tz)
        if span <= timedelta(days=10):
            wanted, text = True, midnight.strftime("%a %d")
        elif span <= timedelta(days=45):
            wanted, text = day.weekday() == 0, midnight.strftime("%d %b")
        else:
            wanted, text = day.day in (1, 16), midnight.strftime("%d %b")
        if wanted and start <= midnight < end:
            ticks.append((midnight, text))
        day += timedelta(days=1)
    return ticks


def bucket_label(start: datetime, step: timedelta, tz: tzinfo) -> str:
    """How a person names a bucket: "Tue 17 Nov 14:00–15:00 CET" or "Tue 17 Nov"."""
    local = start.astimezone(tz)
    if step >= timedelta(days=1):
        return local.strftime("%a %d %b %Y")
    until = (start + step).astimezone(tz)
    return f"{local.strftime('%a %d %b %H:%M')}–{until.strftime('%H:%M %Z')}".rstrip()


# --- line charts ------------------------------------------------------------------------------


def _runs(
    points: Sequence[tuple[datetime, float | None]], step: timedelta
) -> list[list[tuple[datetime, float]]]:
    """Runs of consecutive buckets that have a value: a line is drawn within a run only."""
    runs: list[list[tuple[datetime, float]]] = []
    previous: datetime | None = None
    for at, value in sorted(points, key=lambda p: p[0]):
        if value is None or not math.isfinite(value):
            previous = None
            continue
        if previous is None or at - previous > step:
            runs.append([])
        runs[-1].append((at, value))
        previous = at
    return runs


def line_chart(
    chart_id: str,
    title: str,
    series: Sequence[Series],
    axis: TimeAxis,
    *,
    fmt: Formatter,
    axis_fmt: Formatter | None = None,
    minimum_top: float = 0.0,
    area: bool = False,
) -> Markup:
    """An SVG line chart of `series` over `axis`, y from zero.

    Each series is drawn as polylines over runs of consecutive buckets, so no line crosses a
    bucket without data. Hover targets (one per bucket, or per group of buckets when there
    are many) carry the figures as <title>; `axis_fmt` (default `fmt`) labels the y axis,
    where room is short. `chart_id` must be unique on the page.
    """
    label = axis_fmt or fmt
    span_s = max((axis.end - axis.start).total_seconds(), 1.0)
    values = [v for s in series for _, v in s.points if v is not None and math.isfinite(v)]
    top = nice_ceiling(max([*values, minimum_top, 0.0]) or 1.0)
    half = axis.step / 2
    y_labels = [(top * index / 4, label(top * index / 4)) for index in range(5)]
    # The plot starts right of the widest y label at the larger font, so none is clipped.
    widest = max(text_width(text, FONT_NARROW) for _, text in y_labels)
    left = max(LEFT, math.ceil(widest) + LABEL_GAP + 2)
    plot_w, plot_h = WIDTH - left - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return left + plot_w * min(max((at - axis.start).total_seconds() / span_s, 0.0), 1.0)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - min(max(value / top, 0.0), 1.0))

    parts: list[str] = []
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    parts.append(
        f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(title_id)} {escape(desc_id)}">'
    )
    parts.append(f'<title id="{escape(title_id)}">{escape(title)}</title>')
    parts.append(f'<desc id="{escape(desc_id)}">{escape(_describe(series, fmt))}</desc>')

    # Grid and y labels: five steps from zero to the top.
    parts.append('<g class="gridlines">')
    for value, text in y_labels:
        yy = _coord(y(value))
        parts.append(f'<line x1="{left}" x2="{WIDTH - RIGHT}" y1="{yy}" y2="{yy}"/>')
        parts.append(
            f'<text class="ylabel" x="{left - LABEL_GAP}" y="{yy}" dy="0.32em">'
            f"{escape(text)}</text>"
        )
    ticks = [(x(at), text) for at, text in time_ticks(axis.start, axis.end, axis.tz)]
    for xx, _ in ticks:
        parts.append(
            f'<line class="tick" x1="{_coord(xx)}" x2="{_coord(xx)}" y1="{TOP}" '
            f'y2="{TOP + plot_h}"/>'
        )
    # Labels thinned for each font size; the stylesheet shows the set for the screen.
    for size, font in (("wide", FONT_WIDE), ("narrow", FONT_NARROW)):
        for xx, text in _spread(ticks, font, left, WIDTH):
            parts.append(
                f'<text class="xlabel xlabel-{size}" x="{_coord(xx)}" '
                f'y="{HEIGHT - BOTTOM + 18}">{escape(text)}</text>'
            )
    parts.append("</g>")

    if not values:
        parts.append(
            f'<text class="nodata" x="{left + plot_w / 2:.0f}" y="{TOP + plot_h / 2:.0f}">'
            "No measurements in this range</text>"
        )
    for line in series:
        tone = escape(line.tone)
        parts.append(f'<g class="series series-{tone}">')
        for run in _runs(line.points, axis.step):
            coords = [(x(at + half), y(value)) for at, value in run]
            if len(coords) == 1:
                cx, cy = coords[0]
                parts.append(f'<circle class="dot" cx="{_coord(cx)}" cy="{_coord(cy)}" r="2"/>')
                continue
            path = " ".join(f"{_coord(px)},{_coord(py)}" for px, py in coords)
            if area:
                base = _coord(y(0))
                first, last = _coord(coords[0][0]), _coord(coords[-1][0])
                parts.append(
                    f'<polygon class="area" points="{first},{base} {path} {last},{base}"/>'
                )
            parts.append(f'<polyline class="line" points="{path}"/>')
        parts.append("</g>")

    parts.append(_targets(series, axis, fmt, x))
    parts.append("</svg>")
    return _trusted(parts)


def _describe(series: Sequence[Series], fmt: Formatter) -> str:
    pieces = []
    for line in series:
        values = [v for _, v in line.points if v is not None and math.isfinite(v)]
        if values:
            pieces.append(
                f"{line.label}: lowest {fmt(min(values))}, highest {fmt(max(values))}, "
                f"average {fmt(sum(values) / len(values))}"
            )
        else:
            pieces.append(f"{line.label}: no measurements")
    return "; ".join(pieces)


def _targets(
    series: Sequence[Series], axis: TimeAxis, fmt: Formatter, x: Callable[[datetime], float]
) -> str:
    """Invisible columns over the plot with each bucket's figures as their <title>."""
    by_bucket: dict[datetime, list[tuple[Series, float]]] = {}
    for line in series:
        for at, value in line.points:
            if value is not None and math.isfinite(value):
                by_bucket.setdefault(at, []).append((line, value))
    if not by_bucket:
        return ""
    buckets = sorted(by_bucket)
    group = max(1, math.ceil(len(buckets) / MAX_TARGETS))
    parts = ['<g class="targets">']
    for index in range(0, len(buckets), group):
        chunk = buckets[index : index + group]
        first, last = chunk[0], chunk[-1] + axis.step
        if group == 1:
            when = bucket_label(first, axis.step, axis.tz)
            figures = [f"{line.label} {fmt(value)}" for line, value in by_bucket[first]]
        else:
            when = bucket_label(first, last - first, axis.tz)
            figures = []
            for line in series:
                seen = [v for at in chunk for s, v in by_bucket[at] if s is line]
                if seen:
                    figures.append(f"{line.label} up to {fmt(max(seen))}")
        left, right = x(first), x(last)
        parts.append(
            f'<rect class="target" x="{_coord(left)}" y="{TOP}" '
            f'width="{_coord(max(right - left, 1.0))}" height="{HEIGHT - TOP - BOTTOM}">'
            f"<title>{escape(when + ': ' + ', '.join(figures))}</title></rect>"
        )
    parts.append("</g>")
    return "".join(parts)


# --- the availability bar ---------------------------------------------------------------------

CELL, GAP, ROW_H, TIP_H = 10, 2, 30, 38


def day_bar(bar_id: str, cells: Sequence[DayCell], *, columns: int, hint: str) -> Markup:
    """Days as cells, `columns` per row, oldest first; each cell is focusable, names its
    figures in its <title> (its accessible name, and the tooltip on hover) and shows them
    in the strip below on hover or focus (a tap focuses it on a phone), where `hint`
    stands while no day is chosen."""
    rows = max(1, math.ceil(len(cells) / columns))
    width = columns * CELL - GAP
    bar_h = rows * ROW_H - GAP
    parts = [
        f'<svg class="day-bar-svg" id="{escape(bar_id)}" viewBox="0 0 {width} {bar_h + TIP_H}" '
        f'role="group" aria-label="{escape(hint)}">',
        f'<text class="hint" x="0" y="{bar_h + 18}">{escape(hint)}</text>',
    ]
    for index, cell in enumerate(cells):
        row, column = divmod(index, columns)
        cx, cy = column * CELL, row * ROW_H
        line1, line2 = cell.detail
        parts.append(
            f'<g class="day day-{escape(cell.tone)}" tabindex="0">'
            f"<title>{escape(cell.label)}</title>"
            f'<rect x="{cx}" y="{cy}" width="{CELL - GAP}" height="{ROW_H - GAP}" rx="1.5"/>'
            f'<g class="tip"><rect x="{cx}" y="{bar_h + 2}" width="{CELL - GAP}" height="3"/>'
            f'<text x="0" y="{bar_h + 18}">{escape(line1)}</text>'
            f'<text x="0" y="{bar_h + 33}">{escape(line2)}</text></g>'
            "</g>"
        )
    parts.append("</svg>")
    return _trusted(parts)


# --- meters -----------------------------------------------------------------------------------


def meter(used: float | None, *, tone: str, label: str) -> Markup:
    """A thin horizontal bar filled to `used` (0..1, capped) of its width: budget used."""
    fraction = 0.0 if used is None or not math.isfinite(used) else min(max(used, 0.0), 1.0)
    width = 200
    filled = _coord(width * fraction)
    return _trusted(
        [
            f'<svg class="meter meter-{escape(tone)}" viewBox="0 0 {width} 8" role="img" '
            f'aria-label="{escape(label)}" preserveAspectRatio="none">'
            f'<rect class="meter-track" x="0" y="0" width="{width}" height="8" rx="4"/>'
            f'<rect class="meter-fill" x="0" y="0" width="{filled}" height="8" rx="4"/>'
            "</svg>"
        ]
    )


def span_bar(start: float, end: float, *, tone: str, label: str) -> Markup:
    """A thin track with [start, end) of its width filled (fractions 0..1, clamped): one
    step of a waterfall, placed where it began and as long as it took. A step too short
    to see still shows as a sliver, so no step looks skipped."""
    width = 200
    left = width * min(max(start, 0.0), 1.0)
    right = width * min(max(end, start, 0.0), 1.0)
    return _trusted(
        [
            f'<svg class="span-bar span-{escape(tone)}" viewBox="0 0 {width} 8" role="img" '
            f'aria-label="{escape(label)}" preserveAspectRatio="none">'
            f'<rect class="span-track" x="0" y="0" width="{width}" height="8"/>'
            f'<rect class="span-fill" x="{_coord(min(left, width - 1.0))}" y="0" '
            f'width="{_coord(max(right - left, 1.0))}" height="8"/>'
            "</svg>"
        ]
    )
