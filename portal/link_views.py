"""One link's figures as its page shows them: each contract over the running week and
month with its error budget, the link's outages, the newest check of each HTTP probe
step by step, and the banner of an outage in progress.

Pure: the data comes from the caller (`portal.pages.link`, through `PortalReads`), who
has checked that the viewer may see the link, and nothing here reads, writes or renders
a template. Every availability figure is exact and truncated like the SLA engine's,
never rounded up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from fractions import Fraction

from markupsafe import Markup

from collector.series import LatestCheck
from collector.state_reads import Incident
from kernel.config import HttpProbe, Link
from kernel.domain import LinkStatus
from portal import charts
from portal.formatting import (
    NBSP,
    Moment,
    duration_text,
    local_span,
    local_time,
    milliseconds,
    moment,
    ratio_availability_text,
    share_text,
    target_text,
)
from sla.report import ContractWindow
from sla.spans import from_us, to_us
from sla.windows import WindowKind

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
    used_text = share_text(None if used is None else used * 100)
    window = result.window
    return WindowView(
        contract_id=item.contract.id,
        kind=kind,
        heading="This week" if kind == "week" else "This month",
        label=window.label,
        span=local_span(window.start, window.end, tz),
        contractual=contractual,
        availability=ratio_availability_text(result.availability, item.terms.availability_decimals),
        target=target_text(item.terms.target),
        verdict=verdict,
        tone=tone,
        coverage=share_text(None if result.coverage is None else result.coverage * 100),
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
    excluded: str | None = None  # what excluded maintenance took out of it, if any


def incident_view(
    incident: Incident,
    now: datetime,
    tz: tzinfo,
    sites: Sequence[tuple[str, str]] = (),
    home: str = "",
    excluded: str | None = None,
) -> IncidentView:
    """An outage for the link page. Of a link measured from several `sites` ((id, name)
    pairs), its cause says which sites saw it down and which did not; `excluded` is
    `portal.maintenance_views.outage_note`'s."""
    start = moment(incident.starts_at, now, tz)
    assert start is not None
    if incident.ends_at is None:
        duration = f"{duration_text(_us(now - incident.starts_at))} so far"
    else:
        duration = duration_text(_us(incident.ends_at - incident.starts_at))
    if sites:
        names = dict(sites)
        causes = []
        for seen in incident.witnesses([site for site, _ in sites], home):
            down = ", ".join(
                names.get(site, site) + (f" ({p.error})" if p.error else "")
                for site, p in seen.down
            )
            cause = f"{seen.probe}: seen down from {down}"
            if seen.not_down:
                others = ", ".join(names.get(site, site) for site in seen.not_down)
                cause += f"; not from {others}"
            causes.append(cause)
    else:
        causes = [
            f"{probe.probe_id}: {probe.error}" if probe.error else probe.probe_id
            for probe in incident.probes
        ]
    return IncidentView(
        start=start,
        end=moment(incident.ends_at, now, tz),
        duration=duration,
        cause="; ".join(causes),
        excluded=excluded,
    )


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


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


# --- an outage in progress ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outage:
    """The outage running now, for the banner."""

    since: Moment
    duration: str


def outage_view(since: Moment, started: datetime, now: datetime) -> Outage:
    """The banner's outage: `since` as shown in the board's row, running from `started`."""
    return Outage(since, duration_text(_us(now - started)))
