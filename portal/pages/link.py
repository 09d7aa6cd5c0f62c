"""One link's page: live status and probes, availability against each contract (this week
and this month, with the error budget), 90 days of daily availability, incidents,
maintenance, RTT and loss charts (staff also jitter and interface traffic), the HTTP
probes' response time, their last check step by step and their phases over time, and the
credits of the link's contracts.

The page and its refresh fragment answer 404 alike for a link that does not exist and for
one the viewer may not see; the scope check comes before any read, so every cache key
below names a link (or the shared maintenance list), never a viewer. Every availability
figure is exact and truncated like the SLA engine's, never rounded up. The refresh
fragment carries what moves (status, budgets, probes); the page adds the history.

Nothing here writes to the database or reads data of a link other than the one asked for,
except the maintenance list, which is filtered to the link before it reaches a template.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from fractions import Fraction
from typing import Any, Literal

from aiohttp import web
from markupsafe import Markup

from collector.intervals import Interval
from collector.rollups import BUCKET_ORIGIN, bucket_floor
from collector.series import LatestCheck, SampleBucket
from collector.state_reads import Incident
from kernel.config import RESPONSE_TIME_KINDS, Contract, HttpProbe, Link
from kernel.domain import LinkStatus, MaintenanceWindow
from portal import charts
from portal.auth import Viewer
from portal.board import LinkRow, link_row
from portal.credit_views import credit_view
from portal.formatting import (
    NBSP,
    Moment,
    decimal_text,
    duration_text,
    local_time,
    milliseconds,
    moment,
    pct_text,
)
from portal.keys import CACHE, CLOCK, LIVE, READS
from portal.maintenance_views import maintenance_view, strictest_notice
from portal.pages.common import require_viewer, visible_link
from portal.params import choice
from portal.rendering import render, render_fragment
from portal.scope import Directory
from sla.compute import Period, decide_maintenance, member_spans
from sla.ledger import LedgerRow
from sla.report import ContractWindow, concerns
from sla.spans import SpanSet, from_us, to_us
from sla.windows import WindowKind

routes = web.RouteTableDef()

DAYS = 90  # the availability bar and the incident list look back this far
MINOR_DOWN = timedelta(minutes=30)  # a day down longer than this is red, shorter amber
LEDGER_WINDOWS = 13  # windows per contract on the link page; /credits has them all


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


def day_cell(figures: DayFigures) -> charts.DayCell:
    when = figures.day.strftime("%a %d %b %Y") + (" (today so far)" if figures.today else "")
    if not figures.monitored:
        line1, line2 = when, "no data: monitoring had not begun"
    else:
        if figures.availability is None:
            line1 = f"{when} · nothing measured"
        else:
            line1 = f"{when} · {pct_text(figures.availability)} available"
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


def day_bar(figures: Sequence[DayFigures]) -> DayBar:
    cells = [day_cell(f) for f in figures]
    eligible = sum(max(f.eligible_us, 0) for f in figures)
    down = sum(f.down_us for f in figures)
    overall = Fraction(eligible - down, eligible) if eligible > 0 else None
    return DayBar(
        wide=charts.day_bar("days-wide", cells, columns=len(cells), hint=DAY_BAR_HINT),
        narrow=charts.day_bar("days-narrow", cells, columns=30, hint=DAY_BAR_HINT_NARROW),
        availability=pct_text(overall),
        downtime=duration_text(down),
        first_day=figures[0].day.strftime("%d %b %Y") if figures else "",
        last_day=figures[-1].day.strftime("%d %b %Y") if figures else "",
    )


# --- contract windows and the error budget -----------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowView:
    """A contract measured over the running week or month, as the link page shows it."""

    contract_id: str
    kind: WindowKind
    heading: str  # "This week" / "This month"
    label: str  # 2026-W47
    span: str  # its start and end in the viewer's zone
    contractual: bool  # False: shown for information, the contract is measured otherwise
    availability: str
    target: str
    verdict: str
    tone: str  # up, degraded, down, unknown: the card's accent
    coverage: str
    downtime: str
    excluded: str
    budget: str  # allowed downtime over the whole window
    budget_left: str
    budget_used: str
    burn: str
    burn_tone: str
    meter: Markup
    countdown: str | None  # staff only: when the budget runs out at the present rate


def budget_exhausted_at(item: ContractWindow) -> datetime | None:
    """When the counted downtime reached the budget, if it has: the outages in order."""
    result = item.result
    if result.budget_used is None or result.budget_used < 1:
        return None
    used = Fraction(0)
    for start, end in result.outages:
        length = to_us(end) - to_us(start)
        if used + length >= result.budget_us:
            return from_us(to_us(start) + math.ceil(result.budget_us - used))
        used += length
    return None


def countdown(item: ContractWindow, down_now: bool, now: datetime, tz: tzinfo) -> str | None:
    """For staff: when the budget ran out, or when it will while the link stays down (a
    down link uses its budget one second per second)."""
    result = item.result
    exhausted = budget_exhausted_at(item)
    if exhausted is not None:
        when = local_time(exhausted, tz)
        if exhausted >= now:
            return f"Budget exhausted ({when})"
        return f"Budget exhausted {duration_text(now - exhausted, smallest='min')} ago ({when})"
    if not down_now or result.budget_used is None:
        return None
    runs_out = from_us(to_us(result.measured_until) + math.floor(result.budget_remaining_us))
    window_end = result.window.end.astimezone(UTC)
    if runs_out >= window_end:
        return "Down now, but the budget lasts to the end of the window even if this continues"
    if runs_out <= now:
        return "Down now: the budget runs out now"
    return (
        f"Down now: budget runs out in {duration_text(runs_out - now, smallest='min')}"
        f" at this rate ({local_time(runs_out, tz)})"
    )


def window_view(
    item: ContractWindow,
    kind: WindowKind,
    *,
    down_now: bool,
    staff: bool,
    now: datetime,
    tz: tzinfo,
) -> WindowView:
    result = item.result
    contractual = item.terms.window == kind
    if result.met is None:
        verdict, tone = "Nothing measured yet", "unknown"
    elif result.met:
        verdict, tone = "Meeting the target so far", "up"
    else:
        verdict, tone = "Below the target so far", "down"
    used = result.budget_used
    if used is None:
        burn, burn_tone = "No downtime allowed" if result.budget_us == 0 else "n/a", "unknown"
    elif used >= 1:
        burn, burn_tone = "Budget exhausted", "down"
    elif result.warnings:
        burn, burn_tone = f"Over {max(result.warnings)}{NBSP}% of the budget used", "degraded"
    elif result.burn_rate is not None and result.burn_rate > 1:
        burn, burn_tone = "Using the budget faster than the window allows", "degraded"
    else:
        burn, burn_tone = "Within the budget's pace", "up"
    remaining = result.budget_remaining_us
    if remaining >= 0:
        left = f"{duration_text(remaining)} left"
    else:
        left = f"exceeded by {duration_text(-remaining)}"
    used_text = pct_text(used, 2) if used is not None else "n/a"
    window = result.window
    return WindowView(
        contract_id=item.contract.id,
        kind=kind,
        heading="This week" if kind == "week" else "This month",
        label=window.label,
        span=f"{local_time(window.start, tz)} to {local_time(window.end, tz)}",
        contractual=contractual,
        availability=pct_text(result.availability),
        target=f"{decimal_text(item.terms.target)}{NBSP}%",
        verdict=verdict,
        tone=tone,
        coverage=pct_text(result.coverage, 2),
        downtime=duration_text(result.down_us),
        excluded=duration_text(result.excluded_us),
        budget=duration_text(result.budget_us),
        budget_left=left,
        budget_used=used_text,
        burn=burn,
        burn_tone=burn_tone,
        meter=charts.meter(
            None if used is None else float(used),
            tone=burn_tone,
            label=f"{used_text} of the error budget used",
        ),
        countdown=countdown(item, down_now, now, tz) if staff else None,
    )


def covers(item: ContractWindow, link_id: str) -> bool:
    return link_id in item.subject.link_ids


# --- incidents ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentView:
    start: Moment
    end: Moment | None  # None: ongoing
    duration: str
    cause: str


def incident_view(incident: Incident, now: datetime, tz: tzinfo) -> IncidentView:
    start = moment(incident.starts_at, now, tz)
    assert start is not None
    if incident.ends_at is None:
        duration = f"{duration_text(_us(now - incident.starts_at))} so far"
    else:
        duration = duration_text(_us(incident.ends_at - incident.starts_at))
    causes = [
        f"{probe.probe_id}: {probe.error}" if probe.error else probe.probe_id
        for probe in incident.probes
    ]
    return IncidentView(
        start=start,
        end=moment(incident.ends_at, now, tz),
        duration=duration,
        cause="; ".join(causes),
    )


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


# --- charts ----------------------------------------------------------------------------------


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


async def chart_data(
    app: web.Application, link: Link, name: str, now: datetime, *, traffic: bool
) -> ChartData:
    """RTT, loss and jitter per probe over the range (rollups where they serve, raw
    samples for 24 hours); with `traffic`, the SNMP probes' interface rates instead."""
    spec = RANGES[name]
    start, end = chart_window(spec, now)
    reads = app[READS]
    found: Sequence[SampleBucket]
    if traffic:
        snmp = [p.id for p in link.probes if p.kind == "snmp"]
        found = await reads.recent_sample_buckets(
            link.id, snmp, start, end, spec.step, BUCKET_ORIGIN
        )
    elif spec.bucket == "raw":
        probes = [p.id for p in link.probes]
        found = await reads.recent_sample_buckets(
            link.id, probes, start, end, spec.step, BUCKET_ORIGIN
        )
    else:
        read = await reads.recent_rollups(link.id, start, end, spec.bucket)
        found = [
            SampleBucket(r.probe_id, r.bucket_start, r.rtt_mean_ms, r.rtt_p95_ms,
                   r.loss_mean_pct, r.jitter_mean_ms)
            for r in read
        ]  # fmt: skip
    return ChartData(start, end, spec.step, tuple(found))


async def phase_data(app: web.Application, link: Link, name: str, now: datetime) -> ChartData:
    """The HTTP probes' response phases per bucket over the range, from raw samples."""
    spec = RANGES[name]
    start, end = chart_window(spec, now)
    http = [p.id for p in link.probes if p.kind in RESPONSE_TIME_KINDS]
    found = await app[READS].recent_sample_buckets(
        link.id, http, start, end, spec.step, BUCKET_ORIGIN
    )
    return ChartData(start, end, spec.step, tuple(found))


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


# --- HTTP response phases ------------------------------------------------------------------------

# The milestones an HTTP check records (probes.http), in order, and what the time up to
# each of them was spent on.
PHASE_STEPS: tuple[tuple[str, str], ...] = (
    ("dns", "DNS lookup"),
    ("connect", "TCP connect"),
    ("tls", "TLS handshake"),
    ("redirect", "Redirects"),
    ("first_byte", "Request and server response, to the first byte"),
    ("total", "Body received"),
)


@dataclass(frozen=True, slots=True)
class PhaseStep:
    name: str
    took: str  # this step's own duration
    done_at: str  # when it ended, since the check began
    bar: Markup  # where it lies within the whole check


@dataclass(frozen=True, slots=True)
class PhasesView:
    """The newest check of one HTTP probe, step by step."""

    probe_id: str
    url: str
    observed: Moment
    status: LinkStatus
    total: str | None  # the response time; None when no response was read
    steps: tuple[PhaseStep, ...]
    notes: tuple[str, ...]


def phases_view(link: Link, check: LatestCheck, now: datetime, tz: tzinfo) -> PhasesView | None:
    """The check as a waterfall: each step from the end of the one before to its own
    milestone. Steps that did not happen are not listed (see probes.http)."""
    spec = next((p for p in link.probes if p.id == check.probe_id), None)
    observed = moment(check.observed_at, now, tz)
    if spec is None or observed is None:
        return None
    marks = [
        (name, label, float(check.metrics[f"{name}_ms"]))
        for name, label in PHASE_STEPS
        if isinstance(check.metrics.get(f"{name}_ms"), int | float)
    ]
    end = max((at for _, _, at in marks), default=0.0) or 1.0
    steps = []
    began = 0.0
    redirects = int(check.metrics.get("redirects", 0))
    for name, label, at in marks:
        if name == "redirect":
            label = f"{redirects} redirect{'s' if redirects != 1 else ''} followed"
        took = max(at - began, 0.0)
        steps.append(
            PhaseStep(
                name=label,
                took=milliseconds(took),
                done_at=milliseconds(at),
                bar=charts.span_bar(
                    began / end, at / end, tone=name,
                    label=f"{label}: {milliseconds(took)}, from {milliseconds(began)} "
                    f"to {milliseconds(at)}",
                ),
            )
        )  # fmt: skip
        began = at
    total = check.metrics.get("total_ms")
    notes = []
    if redirects:
        notes.append(
            "DNS, connect and TLS are the first request's; the final request's own "
            "connection is part of the time to the first byte."
        )
    if total is None:
        ended = f": {check.error}" if check.error else ""
        notes.append(f"This check ended before a response was read{ended}.")
    return PhasesView(
        probe_id=check.probe_id,
        url=spec.url if isinstance(spec, HttpProbe) else "",
        observed=observed,
        status=LinkStatus(check.outcome),
        total=None if total is None else milliseconds(float(total)),
        steps=tuple(steps),
        notes=tuple(notes),
    )


def link_contracts(directory: Directory, viewer: Viewer, link: Link) -> list[Contract]:
    return [
        c
        for c in directory.contracts_of_link(link.id)
        if directory.may_see_customer(viewer.user, c.customer)
    ]


def concerning(windows_: Iterable[MaintenanceWindow], link: Link) -> list[MaintenanceWindow]:
    return [w for w in windows_ if concerns(w, link.id, link.customer)]


async def days_of(
    app: web.Application, link: Link, contracts: Sequence[Contract], now: datetime
) -> list[DayFigures]:
    tz = app[LIVE].directory.customer_tz(link.customer)
    first = now.astimezone(tz).date() - timedelta(days=DAYS - 1)
    start = local_midnight(first, tz)
    found = await app[READS].recent_intervals(link.id, start, now)
    planned = concerning(await app[READS].maintenance_around(now), link)
    notice = strictest_notice(contracts, app[LIVE].config, now)
    excluded = [
        (d.window.starts_at, d.window.covers_until)
        for d in decide_maintenance(planned, notice)
        if d.excluded
    ]
    return day_figures(found, excluded, tz, now)


async def ledger_of(
    app: web.Application, link: Link, contracts: Sequence[Contract]
) -> list[LedgerRow]:
    """The newest ledger rows of the link's contracts for this link (or its redundant
    group), with their adjustments, newest window first."""
    pairs = [
        (c.id, f"group:{c.id}" if c.group == "redundant" else link.id)
        for c in contracts
        if c.customer == link.customer
    ]
    if not pairs:
        return []
    return await app[READS].link_ledger(link.customer, pairs, LEDGER_WINDOWS)


# --- the page ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outage:
    """The outage running now, for the banner."""

    since: Moment
    duration: str


async def _live(request: web.Request, viewer: Viewer, link: Link) -> dict[str, Any]:
    """What the refresh fragment shows: status, probes, this week's and month's budgets."""
    app = request.app
    directory = app[LIVE].directory
    now = app[CLOCK]()
    tz = directory.viewer_tz(viewer.user)
    contracts = link_contracts(directory, viewer, link)
    reads = app[READS]
    http = [p.id for p in link.probes if p.kind in RESPONSE_TIME_KINDS]
    states, active, weekly, monthly, checks = await asyncio.gather(
        reads.link_states([link], f"link:{link.id}", now),
        reads.active_maintenance(now),
        reads.windows(contracts, "week", now),
        reads.windows(contracts, "month", now),
        reads.latest_checks(link.id, http, now),
    )
    row: LinkRow = link_row(directory, link, states.get(link.id), active, now, tz)
    down_now = row.measured is LinkStatus.DOWN
    staff = viewer.user.is_staff
    sla: list[tuple[Contract, list[WindowView]]] = []
    kinds: tuple[tuple[WindowKind, list[ContractWindow]], ...] = (
        ("week", weekly),
        ("month", monthly),
    )
    for contract in contracts:
        views = [
            window_view(item, kind, down_now=down_now, staff=staff, now=now, tz=tz)
            for kind, found in kinds
            for item in found
            if item.contract.id == contract.id and covers(item, link.id)
        ]
        # The contractual window first: it is the one that earns credits.
        views.sort(key=lambda v: not v.contractual)
        if views:
            sla.append((contract, views))
    outage = None
    if down_now and row.since is not None:
        state = states.get(link.id)
        since = state.since if state is not None else None
        if since is not None:
            outage = Outage(row.since, duration_text(_us(now - since)))
    return {
        "row": row,
        "sla": sla,
        "outage": outage,
        "phases": [v for c in checks if (v := phases_view(link, c, now, tz)) is not None],
        "updated": now.astimezone(tz).strftime("%H:%M:%S %Z"),
    }


async def _history(
    request: web.Request, viewer: Viewer, link: Link, range_name: str
) -> dict[str, Any]:
    """What only the full page shows: the bar, charts, incidents, maintenance, credits."""
    app = request.app
    directory = app[LIVE].directory
    config = app[LIVE].config
    now = app[CLOCK]()
    tz = directory.viewer_tz(viewer.user)
    staff = viewer.user.is_staff
    contracts = link_contracts(directory, viewer, link)

    async def no_traffic() -> ChartData | None:
        return None

    http = any(p.kind in RESPONSE_TIME_KINDS for p in link.probes)

    async def raw_charts() -> tuple[ChartData | None, ChartData | None]:
        """Interface traffic and response phases, which come from raw samples."""
        return await asyncio.gather(
            chart_data(app, link, range_name, now, traffic=True)
            if staff and range_name in TRAFFIC_RANGES and any(p.kind == "snmp" for p in link.probes)
            else no_traffic(),
            phase_data(app, link, range_name, now)
            if http and range_name in PHASE_RANGES
            else no_traffic(),
        )

    days, found, planned, ledger, data, (traffic, phases) = await asyncio.gather(
        days_of(app, link, contracts, now),
        app[READS].recent_incidents(link.id, DAYS, now),
        app[READS].maintenance_around(now),
        ledger_of(app, link, contracts),
        chart_data(app, link, range_name, now, traffic=False),
        raw_charts(),
    )

    def assemble() -> dict[str, Any]:
        since = now - timedelta(days=DAYS)
        maintenance = [
            maintenance_view(w, contracts, config, now, tz)
            for w in concerning(planned, link)
            if w.ends_at > since
        ]
        upcoming = sorted((m for m in maintenance if m.state != "past"), key=lambda m: m.starts.iso)
        past = sorted((m for m in maintenance if m.state == "past"), key=lambda m: m.starts.iso,
                      reverse=True)  # fmt: skip
        spec = RANGES[range_name]
        return {
            "days": day_bar(days),
            "incidents": [incident_view(i, now, tz) for i in reversed(found)],
            "upcoming": upcoming,
            "past": past,
            "credits": [credit_view(r, now, directory.customer_tz(link.customer)) for r in ledger],
            "charts": chart_views(link, data, traffic, tz, spec.label, staff=staff, phases=phases),
            "traffic_capped": staff
            and range_name not in TRAFFIC_RANGES
            and any(p.kind == "snmp" for p in link.probes),
            "phases_capped": http and range_name not in PHASE_RANGES,
            "ranges": list(RANGES),
            "range": range_name,
            "range_label": spec.label,
            "zone": now.astimezone(tz).strftime("%Z"),
        }

    # Drawing the charts is the costly part: off the event loop, so pages keep being
    # served while it is done.
    return await asyncio.to_thread(assemble)


def _audience(request: web.Request, viewer: Viewer) -> tuple[bool, str]:
    """What a page's content depends on besides the link: staff extras and the zone times
    are shown in. Everyone who may see the link and shares these sees the same page, so
    the views are cached under them (and never under who asked)."""
    tz = request.app[LIVE].directory.viewer_tz(viewer.user)
    return viewer.user.is_staff, str(tz)


async def _live_html(request: web.Request, viewer: Viewer, link: Link) -> Markup:
    """The refresh fragment, built once per cache period for its audience."""

    async def build() -> Markup:
        context = await _live(request, viewer, link)
        return await asyncio.to_thread(render_fragment, request.app, "_link.html", context)

    return await request.app[CACHE].get(("link-live", link.id, *_audience(request, viewer)), build)


@routes.get("/links/{link_id}")
async def link_page(request: web.Request) -> web.Response:
    viewer = require_viewer(request)
    link = visible_link(request, viewer)
    range_name = choice(request.query, "range", RANGES, DEFAULT_RANGE)
    audience = _audience(request, viewer)

    async def history() -> Markup:
        context = await _history(request, viewer, link, range_name)
        return await asyncio.to_thread(render_fragment, request.app, "_link_history.html", context)

    # Building the page (the SVG charts and long tables above all) costs more than
    # reading its data: it is built once per cache period for everyone it is the same
    # for, and only the frame around it (navigation, the viewer's name) per request.
    live_html, history_html = await asyncio.gather(
        _live_html(request, viewer, link),
        request.app[CACHE].get(("link-history", link.id, range_name, *audience), history),
    )
    context = {"row": link, "live_html": live_html, "history_html": history_html}
    return render(request, "link.html", context)


@routes.get("/partial/links/{link_id}")
async def link_partial(request: web.Request) -> web.Response:
    viewer = require_viewer(request, partial=True)
    link = visible_link(request, viewer)
    html = await _live_html(request, viewer, link)
    return web.Response(text=html, content_type="text/html", charset="utf-8")
