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
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from functools import reduce
from typing import Literal

from kernel.domain import LinkStatus, MaintenanceWindow
from kernel.money import quantise
from sla.objectives import MetricFigures, MetricObjective, MetricResult, evaluate_metric_objectives
from sla.quality import QualityRule, SlotFigures, poor_slots, unavailable_for_quality
from sla.spans import US_PER_S, SpanSet, from_us, to_us
from sla.windows import Window

UnknownPolicy = Literal["exclude", "count_as_up", "count_as_down"]


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
    excluded_us: int  # qualifying maintenance within the measured part
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
            reason = f"announced {_hours(given)} ahead (notice required: {_hours(notice)})"
            if mw.covers_until < mw.ends_at:
                ran = mw.covers_until - mw.starts_at
                reason += f"; cancelled {_hours(ran)} after it began, excluded only until then"
            decisions.append(MaintenanceDecision(mw, True, reason))
        else:
            reason = (
                f"announced only {_hours(given)} ahead; the contract requires {_hours(notice)},"
                " so it counts normally"
            )
            decisions.append(MaintenanceDecision(mw, False, reason))
    return decisions


def _hours(delta: timedelta) -> str:
    hours = Fraction(delta.total_seconds()) / 3600
    if hours.denominator == 1:
        return f"{hours.numerator} h"
    return f"{float(hours):.1f} h"


def compute_window(
    window: Window,
    terms: WindowTerms,
    members: Sequence[Sequence[Period]],
    maintenance: Sequence[Sequence[MaintenanceWindow]],
    now: datetime,
    measurements: Measurements | None = None,
    *,
    quality: Sequence[Sequence[SlotFigures]] | None = None,
    metric_figures: Sequence[MetricFigures] | None = None,
) -> WindowResult:
    """One result for a link (one member) or a redundant group (several members).

    A group is down only while every member is down, available while any member is, and
    excluded only while every member is in qualifying maintenance. `maintenance[i]` are
    the windows that concern member i. Under a quality rule, `quality[i]` are member i's
    slot figures; `metric_figures[j]` are the samples of `terms.metric_objectives[j]`.
    """
    if len(members) != len(maintenance) or not members:
        raise ValueError("need one maintenance list per member, and at least one member")
    whole = SpanSet.between(window.start, window.end)
    measured_until = min(max(now, window.start), window.end)
    measured = SpanSet.between(window.start, measured_until)

    decisions: list[MaintenanceDecision] = []
    excluded_each, available_each, down_each = [], [], []
    for periods, windows in zip(members, maintenance, strict=True):
        member_decisions = decide_maintenance(windows, terms.maintenance_notice)
        decisions += member_decisions
        excluded_each.append(
            SpanSet.of(
                (to_us(d.window.starts_at), to_us(d.window.covers_until))
                for d in member_decisions
                if d.excluded
            )
            & whole
        )
        member_up, member_down = member_spans(periods, measured)
        available_each.append(member_up)
        down_each.append(member_down)
    excluded_whole = reduce(operator.and_, excluded_each)
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
        quality_down_us=poor.length_us,
        metric_objectives=metric_results,
    )


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
) -> Credit:
    """Linear steps, bands, the incident rule and `extra_pct` (missed performance
    objectives), summed, capped, priced and floored."""
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
    total_pct = min(terms.cap_pct, steps_pct + band_pct + incident_pct + extra_pct)
    amount = quantise(terms.fee * total_pct / 100, terms.currency)
    if amount < terms.minimum_credit:
        amount = quantise(zero, terms.currency)
    return Credit(
        steps, steps_pct, band_pct, incident_pct, extra_pct, total_pct, amount, terms.currency
    )


def seconds(micros: int | Fraction) -> Decimal:
    """Microseconds as seconds: whole seconds as an integer Decimal, otherwise exact to
    the microsecond (any finer fraction truncated)."""
    value = Fraction(micros) / US_PER_S
    if value.denominator == 1:
        return Decimal(value.numerator)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
