"""Objectives on any stored metric: an aggregate of the window's available samples
against a limit, and the credit a missed one adds.

The aggregates are exact over the stored values: the mean is an exact sum over a count,
p95 and p99 interpolate linearly between the two samples around the rank q × (n − 1)
(as PostgreSQL's percentile_cont does, and as the latency objective's p95 does), max is
the largest sample, and share_above is the percent of samples strictly over `above`. An
objective is met at or under its limit; with no sample to measure it on, it is neither
met nor missed and earns nothing. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Literal

Aggregate = Literal["mean", "p95", "p99", "max", "share_above"]
QUANTILES: Mapping[str, Fraction] = {"p95": Fraction(95, 100), "p99": Fraction(99, 100)}


@dataclass(frozen=True, slots=True)
class MetricObjective:
    metric: str
    aggregate: Aggregate
    limit: Decimal
    credit_pct: Decimal = Decimal(0)
    above: Decimal | None = None
    probe: str | None = None

    @property
    def name(self) -> str:
        what = f"share above {self.above}" if self.aggregate == "share_above" else self.aggregate
        on = f" of {self.probe}" if self.probe else ""
        return f"{self.metric} {what}{on}"

    @property
    def unit(self) -> str:
        """The unit of the measured figure and the limit."""
        if self.aggregate == "share_above" or self.metric.endswith("_pct"):
            return "%"
        for suffix, unit in (("_ms", "ms"), ("_bps", "bit/s"), ("_per_s", "/s")):
            if self.metric.endswith(suffix):
                return unit
        return ""


@dataclass(frozen=True, slots=True)
class MetricFigures:
    """What one objective's samples give (exact): see `aggregate_value`."""

    count: int = 0
    total: Decimal = Decimal(0)
    largest: Decimal | None = None
    over_above: int = 0  # samples strictly over the objective's `above`
    # The sorted samples at the ranks each quantile interpolates between:
    # {"p95": (value at floor(rank), value at floor(rank) + 1 or the same)}.
    around: Mapping[str, tuple[Decimal, Decimal]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MetricResult:
    objective: MetricObjective
    measured: Fraction | None  # None: no available sample to measure it on
    samples: int
    met: bool | None
    credit_pct: Decimal  # what missing it added to the credit


def quantile_rank(q: Fraction, count: int) -> tuple[int, Fraction]:
    """(index of the lower sample, share of the way to the next) of quantile q of
    `count` sorted samples."""
    rank = q * (count - 1)
    lower = math.floor(rank)
    return lower, rank - lower


def aggregate_value(objective: MetricObjective, figures: MetricFigures) -> Fraction | None:
    if figures.count == 0:
        return None
    kind = objective.aggregate
    if kind == "mean":
        return Fraction(figures.total) / figures.count
    if kind == "max":
        return None if figures.largest is None else Fraction(figures.largest)
    if kind == "share_above":
        return Fraction(100 * figures.over_above, figures.count)
    low, high = (Fraction(v) for v in figures.around[kind])
    _, share = quantile_rank(QUANTILES[kind], figures.count)
    return low + share * (high - low)


def evaluate_metric_objectives(
    objectives: Sequence[MetricObjective], figures: Sequence[MetricFigures]
) -> tuple[MetricResult, ...]:
    """`figures[i]` are objective i's samples."""
    results = []
    for objective, found in zip(objectives, figures, strict=True):
        measured = aggregate_value(objective, found)
        met = None if measured is None else measured <= Fraction(objective.limit)
        credit = objective.credit_pct if met is False else Decimal(0)
        results.append(MetricResult(objective, measured, found.count, met, credit))
    return tuple(results)
