"""Quality-based availability: slots whose loss or RTT was over the contract's limit.

A contract may say that a slot (one minute by default, slots aligned to the window's
start) in which the mean loss, or the mean RTT, of the link's available samples was
strictly over its limit is unavailable; exactly the limit is fine, and a slot with no
such sample is judged on nothing, so it is fine too. The part of such a slot in which the
link was available and not excluded counts as down in the availability and the budget,
but it is no outage: it never enters the incidents, the incident rule or notifications.
A redundant group is unavailable for quality only while none of its members is both
available and of good quality.

Pure and exact: the figures per slot are exact sums (`Decimal`) and counts, compared as
`Fraction`s; times are integer microseconds. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import reduce
from operator import or_

from sla.spans import SpanSet


@dataclass(frozen=True, slots=True)
class QualityRule:
    """A slot of `slot_us` is unavailable when a mean is strictly over its limit."""

    slot_us: int
    loss_pct_over: Decimal | None = None
    rtt_ms_over: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SlotFigures:
    """The sums and counts of one slot's available samples of one link."""

    start_us: int  # the slot's start (aligned to the window's start)
    loss_sum: Decimal = Decimal(0)
    loss_count: int = 0
    rtt_sum: Decimal = Decimal(0)
    rtt_count: int = 0

    @property
    def loss_mean(self) -> Fraction | None:
        return Fraction(self.loss_sum) / self.loss_count if self.loss_count else None

    @property
    def rtt_mean(self) -> Fraction | None:
        return Fraction(self.rtt_sum) / self.rtt_count if self.rtt_count else None


def is_poor(figures: SlotFigures, rule: QualityRule) -> bool:
    """Whether a slot's means are strictly over a limit (the limit itself is good)."""
    loss, rtt = figures.loss_mean, figures.rtt_mean
    if rule.loss_pct_over is not None and loss is not None and loss > Fraction(rule.loss_pct_over):
        return True
    return rule.rtt_ms_over is not None and rtt is not None and rtt > Fraction(rule.rtt_ms_over)


def poor_slots(figures: Iterable[SlotFigures], rule: QualityRule) -> SpanSet:
    """The slots of poor quality of one link, whole (`compute_window` clips them)."""
    return SpanSet.of((f.start_us, f.start_us + rule.slot_us) for f in figures if is_poor(f, rule))


def unavailable_for_quality(
    available_each: Sequence[SpanSet], poor_each: Sequence[SpanSet]
) -> SpanSet:
    """Time at which some member is available but none is available with good quality."""
    available = reduce(or_, available_each, SpanSet())
    good = reduce(or_, (a - p for a, p in zip(available_each, poor_each, strict=True)), SpanSet())
    return available - good
