"""One link's charts as its page shows them: the 90-day availability bar, built from
exact day figures of the stored intervals, and the measurement charts over a range (RTT,
loss and jitter per probe, HTTP response phases, SNMP interface traffic), drawn as SVG
by `portal.charts`.

Pure: the intervals, maintenance and sample buckets come from the caller
(`portal.pages.link`, through `PortalReads`), who has checked that the viewer may see
the link; `RANGES` and `chart_window` tell it what to read for a range. Availability is
exact and truncated, never rounded up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from fractions import Fraction
from typing import Any, Literal

from markupsafe import Markup

from collector.intervals import Interval
from collector.rollups import BUCKET_ORIGIN, bucket_floor
from collector.series import SampleBucket
from kernel.config import RESPONSE_TIME_KINDS, Link
from portal import charts
from portal.formatting import (
    DEFAULT_AVAILABILITY_DECIMALS,
    NBSP,
    duration_text,
    ratio_availability_text,
)
from sla.compute import Period, member_spans
from sla.spans import SpanSet, to_us

DAYS = 90  # the availability bar and the incident list look back this far
MINOR_DOWN = timedelta(minutes=30)  # a day down longer than this is red, shorter amber


# --- the 90-day bar -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayFigures:
    """One local day of a link, measured up to `now` for today; microseconds, exact."""

    day: date
    measured_us: int
    down_us: int
    unknown_us: int
    excluded_us: int
    monitored: bool  # False: the day ended before the first stored interval
    today: bool

    @property
    def eligible_us(self) -> int:
        return self.measured_us - self.excluded_us - self.unknown_us

    @property
    def availability(self) -> Fraction | None:
        """Available share of the known, not excluded time (unknown time left out, the
        contracts' default); None when nothing was known."""
        if self.eligible_us <= 0:
            return None
        return Fraction(self.eligible_us - self.down_us, self.eligible_us)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    # Through UTC, so a zone that skips midnight lands on the day's first instant.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_figures(
    intervals: Sequence[Interval],
    excluded: Iterable[tuple[datetime, datetime]],
    tz: tzinfo,
    now: datetime,
    days: int = DAYS,
) -> list[DayFigures]:
    """The last `days` local days in `tz`, oldest first, ending with today (so far).

    A day is real elapsed time, so a DST day is 23 or 25 hours. `intervals` are the link's
    stored intervals (open ones end at `now`); `excluded` the maintenance that qualifies
    for exclusion. Time no interval covers is unknown, as in the SLA engine.
    """
    today = now.astimezone(tz).date()
    first_covered = min((i.starts_at for i in intervals), default=None)
    periods = sorted(
        (Period(i.starts_at, i.ends_at or now, i.status) for i in intervals),
        key=lambda p: p.start,
    )
    excluded_set = SpanSet.of((to_us(start), to_us(end)) for start, end in excluded)
    out = []
    first = 0  # intervals do not overlap: each day needs only those from here on
    for offset in range(days - 1, -1, -1):
        day = today - timedelta(days=offset)
        start = local_midnight(day, tz)
        end = min(local_midnight(day + timedelta(days=1), tz), now)
        while first < len(periods) and periods[first].end <= start:
            first += 1
        last = first
        while last < len(periods) and periods[last].start < end:
            last += 1
        measured = SpanSet.between(start, max(start, end))
        available, down = member_spans(periods[first:last], measured)
        excluded_here = excluded_set & measured
        unknown = measured - available - down - excluded_here
        down = down - excluded_here
        out.append(
            DayFigures(
                day=day,
                measured_us=measured.length_us,
                down_us=down.length_us,
                unknown_us=unknown.length_us,
                excluded_us=excluded_here.length_us,
                monitored=first_covered is not None and first_covered < end,
                today=offset == 0,
            )
        )
    return out


def day_tone(figures: DayFigures) -> str:
    """The cell's colour: downtime first (it is what the customer felt), then excluded
    maintenance, then whether anything was known at all."""
    if not figures.monitored:
        return "none"
    if figures.down_us > 0:
        return "minor" if figures.down_us <= MINOR_DOWN // timedelta(microseconds=1) else "major"
    if figures.excluded_us > 0:
        return "maintenance"
    if figures.eligible_us <= 0:
        return "unknown"
    return "up"


def day_cell(figures: DayFigures, decimals: int = DEFAULT_AVAILABILITY_DECIMALS) -> charts.DayCell:
    when = figures.day.strftime("%a %d %b %Y") + (" (today so far)" if figures.today else "")
    if not figures.monitored:
        line1, line2 = when, "no data: monitoring had not begun"
    else:
        if figures.availability is None:
            line1 = f"{when} · nothing measured"
        else:
            shown = ratio_availability_text(figures.availability, decimals)
            line1 = f"{when} · {shown} available"
        line2 = (
            f"down {duration_text(figures.down_us)} · unknown {duration_text(figures.unknown_us)}"
            f" · maintenance {duration_text(figures.excluded_us)}"
        )
    return charts.DayCell(figures.day, day_tone(figures), f"{line1}; {line2}", (line1, line2))


@dataclass(frozen=True, slots=True)
class DayBar:
    wide: Markup  # 90 cells in a row
    narrow: Markup  # 30 per row, for phones
    availability: str  # over the whole bar
    downtime: str
    first_day: str
    last_day: str


DAY_BAR_HINT = "Availability per day, last 90 days. Hover or tap a day for its figures."
DAY_BAR_HINT_NARROW = "Tap a day for its figures."


def day_bar(figures: Sequence[DayFigures], decimals: int = DEFAULT_AVAILABILITY_DECIMALS) -> DayBar:
    """The link's last days; `decimals` of its contract's availability, when it has one."""
    cells = [day_cell(f, decimals) for f in figures]
    eligible = sum(max(f.eligible_us, 0) for f in figures)
    down = sum(f.down_us for f in figures)
    overall = Fraction(eligible - down, eligible) if eligible > 0 else None
    return DayBar(
        wide=charts.day_bar("days-wide", cells, columns=len(cells), hint=DAY_BAR_HINT),
        narrow=charts.day_bar("days-narrow", cells, columns=30, hint=DAY_BAR_HINT_NARROW),
        availability=ratio_availability_text(overall, decimals),
        downtime=duration_text(down),
        first_day=figures[0].day.strftime("%d %b %Y") if figures else "",
        last_day=figures[-1].day.strftime("%d %b %Y") if figures else "",
    )


# --- measurements over a range ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartRange:
    span: timedelta
    bucket: Literal["raw", "hour", "day"]  # raw: samples bucketed in SQL at `step`
    step: timedelta
    label: str


RANGES: Mapping[str, ChartRange] = {
    "24h": ChartRange(timedelta(hours=24), "raw", timedelta(minutes=5), "24 hours"),
    "7d": ChartRange(timedelta(days=7), "hour", timedelta(hours=1), "7 days"),
    "30d": ChartRange(timedelta(days=30), "hour", timedelta(hours=1), "30 days"),
    "90d": ChartRange(timedelta(days=90), "day", timedelta(days=1), "90 days"),
}
DEFAULT_RANGE = "7d"
# Rollups do not carry interface traffic, so it comes from raw samples, whose rows of one
# link lie scattered among every other link's: one page read per sample. Charting it over
# a month would read tens of thousands of pages; up to a week stays within the page's time.
TRAFFIC_RANGES = frozenset({"24h", "7d"})
# HTTP response phases come from raw samples too, for the same reason over the same ranges.
PHASE_RANGES = TRAFFIC_RANGES


@dataclass(frozen=True, slots=True)
class ChartData:
    start: datetime
    end: datetime
    step: timedelta
    buckets: tuple[SampleBucket, ...]


@dataclass(frozen=True, slots=True)
class LegendItem:
    label: str
    tone: str
    summary: str


@dataclass(frozen=True, slots=True)
class ChartView:
    id: str
    title: str
    svg: Markup
    legend: tuple[LegendItem, ...]


def chart_window(spec: ChartRange, now: datetime) -> tuple[datetime, datetime]:
    if spec.bucket == "raw":
        start = BUCKET_ORIGIN + ((now - spec.span - BUCKET_ORIGIN) // spec.step) * spec.step
    else:
        start = bucket_floor(now - spec.span, spec.bucket)
    return start, now


def ms(value: float) -> str:
    return f"{charts.number(value, 2 if value < 10 else 1)}{NBSP}ms"


def pct(value: float) -> str:
    return f"{charts.number(value, 2)}{NBSP}%"


def bps(value: float) -> str:
    for factor, unit in ((1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
        if abs(value) >= factor:
            return f"{charts.number(value / factor, 2)}{NBSP}{unit}"
    return f"{charts.number(value, 0)}{NBSP}bit/s"


def bps_short(value: float) -> str:
    """An axis label for traffic: "1.5 G", "200 M"."""
    for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{charts.number(value / factor, 1)}{NBSP}{unit}"
    return charts.number(value, 0)


def _legend(series: Sequence[charts.Series], fmt: charts.Formatter) -> tuple[LegendItem, ...]:
    items = []
    for line in series:
        values = [v for _, v in line.points if v is not None]
        summary = (
            f"average {fmt(sum(values) / len(values))}, peak {fmt(max(values))}"
            if values
            else "no measurements"
        )
        items.append(LegendItem(line.label, line.tone, summary))
    return tuple(items)


def _series(
    buckets: Sequence[SampleBucket],
    label: str,
    tone: str,
    value: Callable[[SampleBucket], float | None],
) -> charts.Series:
    return charts.Series(label, tone, tuple((b.start, value(b)) for b in buckets))


def chart_views(
    link: Link,
    data: ChartData,
    traffic: ChartData | None,
    tz: tzinfo,
    range_label: str,
    *,
    staff: bool,
    phases: ChartData | None = None,
) -> list[ChartView]:
    """RTT (mean, p95) and loss per measuring probe (an HTTP probe's is its response
    time), and the HTTP probes' response phases when `phases` was read; for `staff` also
    jitter, and the SNMP probes' interface traffic when `traffic` was read."""
    axis = charts.TimeAxis(data.start, data.end, data.step, tz)
    views: list[ChartView] = []

    def add(chart_id: str, title: str, series: list[charts.Series], fmt: charts.Formatter,
            **options: Any) -> None:  # fmt: skip
        svg = charts.line_chart(chart_id, title, series, axis, fmt=fmt, **options)
        views.append(ChartView(chart_id, title, svg, _legend(series, fmt)))

    for probe in link.probes:
        mine = [b for b in data.buckets if b.probe_id == probe.id]
        suffix = f" · {probe.id} ({probe.kind}), last {range_label}"
        has = {
            name: any(getattr(b, name) is not None for b in mine)
            for name in ("rtt_mean_ms", "rtt_p95_ms", "loss_pct", "jitter_ms")
        }
        if probe.kind != "snmp" or has["rtt_mean_ms"]:
            series = [_series(mine, "mean", "a", lambda b: b.rtt_mean_ms)]
            if has["rtt_p95_ms"]:
                series.append(_series(mine, "p95", "b", lambda b: b.rtt_p95_ms))
            if probe.kind in RESPONSE_TIME_KINDS:
                add(f"response-{probe.id}", "Response time" + suffix, series, ms)
            else:
                add(f"rtt-{probe.id}", "Round-trip time" + suffix, series, ms)
        if probe.kind == "icmp" or has["loss_pct"]:
            series = [_series(mine, "loss", "c", lambda b: b.loss_pct)]
            add(f"loss-{probe.id}", "Packet loss" + suffix, series, pct, minimum_top=1.0,
                area=True)  # fmt: skip
        if staff and has["jitter_ms"]:
            series = [_series(mine, "jitter", "a", lambda b: b.jitter_ms)]
            add(f"jitter-{probe.id}", "Jitter" + suffix, series, ms)
    if phases is not None:
        for probe in link.probes:
            if probe.kind not in RESPONSE_TIME_KINDS:
                continue
            mine = [b for b in phases.buckets if b.probe_id == probe.id]
            series = [
                _series(mine, "connection ready", "c", lambda b: b.connected_ms),
                _series(mine, "first byte", "a", lambda b: b.first_byte_ms),
                _series(mine, "complete", "b", lambda b: b.total_ms),
            ]
            title = f"Response phases · {probe.id} ({probe.kind}), last {range_label}"
            add(f"phases-{probe.id}", title, series, ms)
    if staff and traffic is not None:
        for probe in link.probes:
            if probe.kind != "snmp":
                continue
            mine = [b for b in traffic.buckets if b.probe_id == probe.id]
            series = [
                _series(mine, "in", "a", lambda b: b.in_bps),
                _series(mine, "out", "b", lambda b: b.out_bps),
            ]
            add(f"traffic-{probe.id}", "Interface traffic" + suffix, series, bps,
                axis_fmt=bps_short)  # fmt: skip
    return views
