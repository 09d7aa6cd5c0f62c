"""Availability, error budget and service credit for one contract window: pure and exact.

Inputs are a link's (or a redundant group's) state periods, the maintenance windows that
concern it, and the contract terms in force at the window's start. Times are integer
microseconds, ratios `Fraction`s, money `Decimal`s: no float touches a billed figure. The
rules are those of docs/design.md; this module never does I/O or reads a clock.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from functools import reduce
from typing import Literal

from kernel.config.hours import CoveredRange
from kernel.domain import LinkStatus, MaintenanceWindow
from kernel.formatting import duration_text
from kernel.money import quantise
from sla.hours import covered
from sla.objectives import MetricFigures, MetricObjective, MetricResult, evaluate_metric_objectives
from sla.quality import QualityRule, SlotFigures, poor_slots, unavailable_for_quality
from sla.restore import Continuing, Restore, RestoreRule, restore_pct, restores
from sla.spans import US_PER_S, SpanSet, from_us, to_us
from sla.windows import Window

UnknownPolicy = Literal["exclude", "count_as_up", "count_as_down"]
CustomerCausedPolicy = Literal["exclude", "count"]


@dataclass(frozen=True, slots=True)
class Band:
    below_pct: Decimal  # availability strictly below this ...
    credit_pct: Decimal  # ... earns this credit


@dataclass(frozen=True, slots=True)
class IncidentRule:
    count: int  # this many outages or more ...
    min_duration: timedelta  # ... each at least this long ...
    credit_pct: Decimal  # ... earn this extra credit


@dataclass(frozen=True, slots=True)
class WindowTerms:
    """The contract terms that apply to one window (the version in force at its start)."""

    target_pct: Decimal
    fee: Decimal = Decimal("0")
    currency: str = "EUR"
    step_pct: Decimal = Decimal("0.5")
    per_step_pct: Decimal = Decimal("0")
    rounding: Literal["ceil", "floor"] = "ceil"
    bands: tuple[Band, ...] = ()
    incident_rule: IncidentRule | None = None
    cap_pct: Decimal = Decimal("100")
    minimum_credit: Decimal = Decimal("0")
    unknown: UnknownPolicy = "exclude"
    maintenance_notice: timedelta = timedelta(hours=72)
    budget_warnings: tuple[int, ...] = (50, 80, 100)  # percent of the budget used
    objectives: tuple[Objective, ...] = ()
    min_coverage_pct: Decimal | None = None  # under it: no automatic credit, a review
    review_coverage_pct: Decimal = Decimal("0")  # under it: a review (ledger's floor)
    restore: RestoreRule | None = None  # time to restore, per outage (sla/restore.py)
    # Covered hours in the window's zone (None: every hour) and holidays: time outside
    # them is excluded like announced maintenance (sla/hours.py).
    hours: tuple[CoveredRange, ...] | None = None
    holidays: tuple[date, ...] = ()
    # Outage time attributed to the customer: excluded like maintenance, or counted.
    customer_caused: CustomerCausedPolicy = "exclude"
    quality: QualityRule | None = None  # slots of poor quality count as down (sla.quality)
    metric_objectives: tuple[MetricObjective, ...] = ()  # on any stored metric


@dataclass(frozen=True, slots=True)
class Objective:
    """A performance objective over the window's available time: met at or under `limit`."""

    name: Literal["latency p95", "latency mean", "loss"]
    limit: Decimal  # ms for latency, percent for loss
    credit_pct: Decimal = Decimal("0")  # earned when missed

    @property
    def unit(self) -> str:
        return "%" if self.name == "loss" else "ms"


@dataclass(frozen=True, slots=True)
class Measurements:
    """Performance over the window's available (up or degraded) samples."""

    rtt_mean_ms: float | None = None
    rtt_p95_ms: float | None = None
    loss_mean_pct: float | None = None

    def of(self, objective: Objective) -> float | None:
        return {
            "latency p95": self.rtt_p95_ms,
            "latency mean": self.rtt_mean_ms,
            "loss": self.loss_mean_pct,
        }[objective.name]


@dataclass(frozen=True, slots=True)
class ObjectiveResult:
    objective: Objective
    measured: float | None  # None: no available sample to measure it on
    met: bool | None
    credit_pct: Decimal  # what missing it added to the credit


@dataclass(frozen=True, slots=True)
class Period:
    """A piece of state: [start, end) with one status."""

    start: datetime
    end: datetime
    status: LinkStatus


@dataclass(frozen=True, slots=True)
class MaintenanceDecision:
    window: MaintenanceWindow
    excluded: bool
    reason: str  # why it was or was not excluded, for the report's method section


@dataclass(frozen=True, slots=True)
class Credit:
    steps: int
    steps_pct: Decimal
    band_pct: Decimal
    incident_pct: Decimal
    objective_pct: Decimal  # from missed performance objectives
    total_pct: Decimal  # after the cap
    amount: Decimal  # in the currency's minor units (quantised), 0 under minimum_credit
    currency: str
    restore_pct: Decimal = Decimal(0)  # from outages restored late, after their own cap


@dataclass(frozen=True, slots=True)
class Review:
    """Why a person must look at a window's credit before it is approved: its coverage
    (known time / measured time) is under a limit, so the figures rest on little data."""

    rule: Literal["min_coverage", "review_coverage_below"]
    limit_pct: Decimal
    # Under the contract's min_coverage: the credit its rules give, which is not credited
    # automatically (the window's credit is zero until a person decides).
    withheld: Credit | None = None


@dataclass(frozen=True, slots=True)
class WindowResult:
    window: Window
    measured_until: datetime  # window end, or `now` for a running window
    window_us: int  # the whole window, real elapsed time
    measured_us: int  # the part of it up to measured_until
    excluded_us: int  # qualifying maintenance and time outside covered hours, measured part
    unknown_us: int  # unknown time not excluded
    down_us: int  # down time not excluded (plus unknown under count_as_down)
    eligible_us: int
    availability: Fraction | None  # 0..1; None when nothing is eligible ("n/a")
    target: Fraction
    met: bool | None
    coverage: Fraction  # known time / measured time
    outages: tuple[tuple[datetime, datetime], ...]  # down spans counted, clipped to window
    budget_us: Fraction  # allowed downtime for the whole window
    budget_used: Fraction | None  # down / budget; None when the budget is zero
    credit: Credit
    maintenance: tuple[MaintenanceDecision, ...] = field(default=())
    objectives: tuple[ObjectiveResult, ...] = field(default=())
    warnings: tuple[int, ...] = field(default=())  # budget warning levels reached, percent
    review: Review | None = None
    # Time to restore: the outages that ended in the window (from their confirmed start,
    # maybe before the window's), and those still running at its measured end, which
    # are billed in the window they end in.
    restores: tuple[Restore, ...] = field(default=())
    continuing: tuple[Continuing, ...] = field(default=())
    outside_hours_us: int = 0  # of excluded_us: outside covered hours (maintenance or not)
    # Outage time attributed to the customer (beyond qualifying maintenance), within the
    # measured part: part of excluded_us when the contract excludes it, else counted.
    customer_caused_us: int = 0
    customer_caused: tuple[tuple[datetime, datetime], ...] = field(default=())  # its spans
    # Of down_us: available time in slots of poor quality (sla.quality); no outage.
    quality_down_us: int = 0
    metric_objectives: tuple[MetricResult, ...] = field(default=())

    @property
    def incidents(self) -> int:
        return len(self.outages)

    @property
    def budget_remaining_us(self) -> Fraction:
        """Downtime still allowed in the window; negative once the budget is exceeded."""
        return self.budget_us - self.down_us

    @property
    def burn_rate(self) -> Fraction | None:
        """How fast the budget is used relative to an even pace through the window:
        1 uses it up exactly at the window's end, 2 at its middle."""
        if self.budget_used is None or not self.measured_us:
            return None
        return self.budget_used / Fraction(self.measured_us, self.window_us)


def truncate(value: Fraction, places: int) -> Decimal:
    """`value` truncated (never rounded up) to `places` decimals: how every figure is
    shown (docs/design.md), so that no display claims more than was measured."""
    return Decimal(math.floor(value * 10**places)).scaleb(-places)


def truncate_pct(ratio: Fraction | None, places: int = 4) -> Decimal | None:
    """A ratio as a percentage truncated (never rounded up) to `places` decimals."""
    if ratio is None:
        return None
    return truncate(ratio * 100, places)


def member_spans(periods: Iterable[Period], measured: SpanSet) -> tuple[SpanSet, SpanSet]:
    """(available, down) time of one link within `measured`; the rest is unknown."""
    up, down = [], []
    for period in periods:
        span = (to_us(period.start), to_us(period.end))
        if period.status in (LinkStatus.UP, LinkStatus.DEGRADED):
            up.append(span)
        elif period.status is LinkStatus.DOWN:
            down.append(span)
    available, down_set = SpanSet.of(up) & measured, SpanSet.of(down) & measured
    # A period that claims both (overlapping input) is not available: down wins.
    return available - down_set, down_set


def decide_maintenance(
    windows: Iterable[MaintenanceWindow], notice: timedelta
) -> list[MaintenanceDecision]:
    decisions = []
    for mw in sorted(windows, key=lambda w: (w.starts_at, w.id)):
        given = mw.starts_at - mw.announced_at
        if mw.withdrawn:
            reason = "cancelled before it began, so it excludes nothing"
            decisions.append(MaintenanceDecision(mw, False, reason))
        elif given >= notice:
            reason = f"announced {_span(given)} ahead (notice required: {_span(notice)})"
            if mw.covers_until < mw.ends_at:
                ran = mw.covers_until - mw.starts_at
                reason += f"; cancelled {_span(ran)} after it began, excluded only until then"
            decisions.append(MaintenanceDecision(mw, True, reason))
        else:
            late = given <= timedelta(0)
            when = "only once it had begun" if late else f"only {_span(given)} ahead"
            reason = (
                f"announced {when}; the contract requires {_span(notice)}, so it counts normally"
            )
            decisions.append(MaintenanceDecision(mw, False, reason))
    return decisions


@dataclass(frozen=True, slots=True)
class Exclusion:
    """The time one qualifying maintenance window excludes: from its start to where it
    covers until (an overrun past its announced end counts; a cancellation stops it)."""

    window: MaintenanceWindow
    start: datetime
    end: datetime


def exclusions(decisions: Iterable[MaintenanceDecision]) -> list[Exclusion]:
    """The excluded time of the windows `decide_maintenance` found qualifying: the one
    rule for what maintenance takes out of a contract's measured time."""
    return [
        Exclusion(d.window, d.window.starts_at, d.window.covers_until)
        for d in decisions
        if d.excluded
    ]


def _span(delta: timedelta) -> str:
    """A notice or a run in a reason the ledger and reports keep: the duration rule of
    every page ("3 d 18 h", truncated, so a notice a minute short never reads as met),
    with plain spaces as stored text has."""
    return duration_text(delta, space=" ")


def compute_window(
    window: Window,
    terms: WindowTerms,
    members: Sequence[Sequence[Period]],
    maintenance: Sequence[Sequence[MaintenanceWindow]],
    now: datetime,
    measurements: Measurements | None = None,
    *,
    customer_caused: Sequence[Sequence[tuple[datetime, datetime]]] | None = None,
    quality: Sequence[Sequence[SlotFigures]] | None = None,
    metric_figures: Sequence[MetricFigures] | None = None,
) -> WindowResult:
    """One result for a link (one member) or a redundant group (several members).

    A group is down only while every member is down, available while any member is, and
    excluded only while every member is in qualifying maintenance. `maintenance[i]` are
    the windows that concern member i; `customer_caused[i]` the spans of member i's
    outages attributed to the customer (in force), excluded like maintenance when the
    terms say so, and never where the member was available. Under a quality rule,
    `quality[i]` are member i's slot figures; `metric_figures[j]` are the samples of
    `terms.metric_objectives[j]`.
    """
    if len(members) != len(maintenance) or not members:
        raise ValueError("need one maintenance list per member, and at least one member")
    if customer_caused is not None and len(customer_caused) != len(members):
        raise ValueError("need one list of customer-caused spans per member")
    whole = SpanSet.between(window.start, window.end)
    measured_until = min(max(now, window.start), window.end)
    measured = SpanSet.between(window.start, measured_until)

    decisions: list[MaintenanceDecision] = []
    excluded_each, available_each, down_each = [], [], []
    qualifying_each: list[SpanSet] = []  # unclipped, for the restore clock
    caused_each: list[SpanSet] = []
    for periods, windows in zip(members, maintenance, strict=True):
        member_decisions = decide_maintenance(windows, terms.maintenance_notice)
        decisions += member_decisions
        qualifying = SpanSet.of(
            (to_us(e.start), to_us(e.end)) for e in exclusions(member_decisions)
        )
        qualifying_each.append(qualifying)
        excluded_each.append(qualifying & whole)
        member_up, member_down = member_spans(periods, measured)
        available_each.append(member_up)
        down_each.append(member_down)
        attributed = customer_caused[len(caused_each)] if customer_caused is not None else ()
        caused_each.append(attributed_time(attributed, member_up, measured))
    excluded_whole = reduce(operator.and_, excluded_each)
    outside = outside_hours(terms, window.start, window.end)
    if outside:
        excluded_whole |= outside
    # Customer-caused time is what would be excluded with the attributions that maintenance
    # does not exclude already; only the contract's `exclude` takes it out.
    caused = (
        reduce(operator.and_, (e | c for e, c in zip(excluded_each, caused_each, strict=True)))
        - excluded_whole
    )
    if terms.customer_caused == "exclude":
        excluded_whole = excluded_whole | caused
    available = reduce(operator.or_, available_each)
    down = reduce(operator.and_, down_each) - available

    excluded = excluded_whole & measured
    unknown = measured - available - down - excluded
    down = down - excluded
    poor = SpanSet()
    if terms.quality is not None and quality is not None:
        poor_each = [poor_slots(figures, terms.quality) for figures in quality]
        poor = unavailable_for_quality(available_each, poor_each) - excluded
    unknown_us, down_us = unknown.length_us, down.length_us
    measured_us, excluded_us = measured.length_us, excluded.length_us

    if terms.unknown == "exclude":
        eligible_us = measured_us - excluded_us - unknown_us
    else:
        eligible_us = measured_us - excluded_us
        if terms.unknown == "count_as_down":
            down_us += unknown_us
    # Unavailable for quality: down in the availability and the budget, never an outage.
    down_us += poor.length_us
    availability = Fraction(eligible_us - down_us, eligible_us) if eligible_us > 0 else None
    target = Fraction(terms.target_pct) / 100

    # The budget covers the whole window: known future maintenance is excluded already;
    # unknown time only as far as it has happened.
    budget_base = whole.length_us - excluded_whole.length_us
    if terms.unknown == "exclude":
        budget_base -= unknown_us
    budget_us = (1 - target) * budget_base
    budget_used = Fraction(down_us) / budget_us if budget_us > 0 else None

    outage_spans = down if terms.unknown != "count_as_down" else down | unknown
    outages = tuple(_datetime_span(span) for span in outage_spans.spans)
    objectives = evaluate_objectives(terms.objectives, measurements or Measurements())
    billed: tuple[Restore, ...] = ()
    continuing: tuple[Continuing, ...] = ()
    if terms.restore is not None:
        subject_outages = subject_down(members)
        # The clock stops over what the contract excludes inside the outage, also before
        # the window's start: qualifying maintenance and time outside covered hours.
        clock_stops = reduce(operator.and_, qualifying_each)
        if terms.customer_caused == "exclude" and customer_caused is not None:
            clock_stops |= reduce(
                operator.and_,
                (SpanSet.of((to_us(a), to_us(b)) for a, b in spans) for spans in customer_caused),
            )
        if subject_outages:
            first, last = subject_outages.spans[0][0], subject_outages.spans[-1][1]
            zone = window.start.tzinfo
            clock_stops |= outside_hours(
                terms, from_us(first).astimezone(zone), from_us(last).astimezone(zone)
            )
        billed, continuing = restores(
            subject_outages,
            clock_stops,
            to_us(window.start),
            to_us(measured_until),
            terms.restore,
        )
    metric_results = evaluate_metric_objectives(
        terms.metric_objectives,
        metric_figures or [MetricFigures() for _ in terms.metric_objectives],
    )
    credit = compute_credit(
        terms,
        availability,
        [end - start for start, end in outage_spans.spans],
        extra_pct=sum((o.credit_pct for o in objectives), Decimal(0))
        + sum((m.credit_pct for m in metric_results), Decimal(0)),
        restore_pct=Decimal(0) if terms.restore is None else restore_pct(billed, terms.restore),
    )
    known_us = measured_us - unknown_us
    coverage = Fraction(known_us, measured_us) if measured_us else Fraction(0)
    review = coverage_review(terms, coverage, measured_us, credit)
    if review is not None and review.withheld is not None:
        credit = _no_credit(terms.currency)
    return WindowResult(
        window=window,
        measured_until=measured_until,
        window_us=whole.length_us,
        measured_us=measured_us,
        excluded_us=excluded_us,
        unknown_us=unknown_us,
        down_us=down_us,
        eligible_us=eligible_us,
        availability=availability,
        target=target,
        met=None if availability is None else availability >= target,
        coverage=coverage,
        outages=outages,
        budget_us=budget_us,
        budget_used=budget_used,
        credit=credit,
        maintenance=tuple(decisions),
        objectives=objectives,
        warnings=tuple(
            level
            for level in sorted(terms.budget_warnings)
            if budget_used is not None and budget_used * 100 >= level
        ),
        review=review,
        restores=billed,
        continuing=continuing,
        outside_hours_us=(outside & measured).length_us,
        customer_caused_us=caused.length_us,
        customer_caused=tuple(_datetime_span(span) for span in caused.spans),
        quality_down_us=poor.length_us,
        metric_objectives=metric_results,
    )


def subject_down(members: Sequence[Sequence[Period]]) -> SpanSet:
    """The subject's down time over all the periods given, unclipped (a redundant group
    is down while every member is): the outages the restore clock times."""
    starts = [to_us(p.start) for periods in members for p in periods]
    ends = [to_us(p.end) for periods in members for p in periods]
    if not starts:
        return SpanSet()
    everything = SpanSet(((min(starts), max(ends)),))
    spans = [member_spans(periods, everything) for periods in members]
    available = reduce(operator.or_, (up for up, _ in spans))
    return reduce(operator.and_, (down for _, down in spans)) - available


def outside_hours(terms: WindowTerms, start: datetime, end: datetime) -> SpanSet:
    """The time of [start, end) outside the contract's covered hours (or on its
    holidays), in the zone of `start`: nothing when the contract measures every hour."""
    if terms.hours is None and not terms.holidays:
        return SpanSet()
    tz = start.tzinfo
    assert tz is not None
    return SpanSet.between(start, end) - covered(terms.hours, terms.holidays, tz, start, end)


def attributed_time(
    spans: Iterable[tuple[datetime, datetime]], available: SpanSet, measured: SpanSet
) -> SpanSet:
    """Of a member's spans attributed to the customer, the measured time it was not
    available: an attribution excuses outage time, never time the link was up."""
    return (SpanSet.of((to_us(start), to_us(end)) for start, end in spans) & measured) - available


def coverage_review(
    terms: WindowTerms, coverage: Fraction, measured_us: int, credit: Credit
) -> Review | None:
    """The review a window's coverage calls for, if any. Nothing measured yet (a window
    that has just begun) has no coverage to judge."""
    if measured_us <= 0:
        return None
    pct = coverage * 100
    if terms.min_coverage_pct is not None and pct < Fraction(terms.min_coverage_pct):
        return Review("min_coverage", terms.min_coverage_pct, withheld=credit)
    if pct < Fraction(terms.review_coverage_pct):
        return Review("review_coverage_below", terms.review_coverage_pct)
    return None


def _no_credit(currency: str) -> Credit:
    zero = Decimal(0)
    return Credit(0, zero, zero, zero, zero, zero, quantise(zero, currency), currency)


def evaluate_objectives(
    objectives: Sequence[Objective], measurements: Measurements
) -> tuple[ObjectiveResult, ...]:
    results = []
    for objective in objectives:
        measured = measurements.of(objective)
        met = None if measured is None else Decimal(str(measured)) <= objective.limit
        credit = objective.credit_pct if met is False else Decimal(0)
        results.append(ObjectiveResult(objective, measured, met, credit))
    return tuple(results)


def _datetime_span(span: tuple[int, int]) -> tuple[datetime, datetime]:
    return from_us(span[0]), from_us(span[1])


def compute_credit(
    terms: WindowTerms,
    availability: Fraction | None,
    outage_lengths_us: Sequence[int],
    *,
    extra_pct: Decimal = Decimal(0),
    restore_pct: Decimal = Decimal(0),
) -> Credit:
    """Linear steps, bands, the incident rule, `extra_pct` (missed performance
    objectives) and `restore_pct` (outages restored late), summed, capped, priced and
    floored."""
    zero = Decimal(0)
    if availability is None:
        return _no_credit(terms.currency)
    availability_pct = availability * 100
    shortfall = Fraction(terms.target_pct) - availability_pct
    steps = 0
    if shortfall > 0 and terms.per_step_pct > 0:
        per = shortfall / Fraction(terms.step_pct)
        steps = math.ceil(per) if terms.rounding == "ceil" else math.floor(per)
    steps_pct = steps * terms.per_step_pct
    band_pct = max(
        (b.credit_pct for b in terms.bands if availability_pct < Fraction(b.below_pct)),
        default=zero,
    )
    incident_pct = zero
    rule = terms.incident_rule
    if rule is not None:
        long_enough = rule.min_duration // timedelta(microseconds=1)
        if sum(1 for length in outage_lengths_us if length >= long_enough) >= rule.count:
            incident_pct = rule.credit_pct
    total_pct = min(terms.cap_pct, steps_pct + band_pct + incident_pct + extra_pct + restore_pct)
    amount = quantise(terms.fee * total_pct / 100, terms.currency)
    if amount < terms.minimum_credit:
        amount = quantise(zero, terms.currency)
    return Credit(
        steps,
        steps_pct,
        band_pct,
        incident_pct,
        extra_pct,
        total_pct,
        amount,
        terms.currency,
        restore_pct,
    )


def seconds(micros: int | Fraction) -> Decimal:
    """Microseconds as seconds: whole seconds as an integer Decimal, otherwise exact to
    the microsecond (any finer fraction truncated)."""
    value = Fraction(micros) / US_PER_S
    if value.denominator == 1:
        return Decimal(value.numerator)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
