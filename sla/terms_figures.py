"""What quality-based availability and metric objectives are computed from: the engine's
terms from the contract's, and each subject's figures read from stored samples.

Only contracts with these terms read anything, and only their own links' samples in the
window. Reads; never writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector import Database
from kernel.config import RESPONSE_TIME_KINDS, Config, ResolvedTerms
from kernel.config.objectives import objective_probes
from sla.measurements import metric_figures, quality_figures
from sla.objectives import MetricFigures, MetricObjective
from sla.quality import QualityRule, SlotFigures


@dataclass(frozen=True, slots=True)
class SubjectFigures:
    """One subject's figures: slot figures per member, figures per metric objective."""

    quality: tuple[Sequence[SlotFigures], ...] | None = None
    metrics: tuple[MetricFigures, ...] | None = None


def quality_rule(terms: ResolvedTerms) -> QualityRule | None:
    if terms.availability is None:
        return None
    limits = terms.availability.unavailable_when
    return QualityRule(
        slot_us=limits.over // timedelta(microseconds=1),
        loss_pct_over=limits.loss_pct_over,
        rtt_ms_over=limits.rtt_ms_over,
    )


def metric_objectives(terms: ResolvedTerms) -> tuple[MetricObjective, ...]:
    return tuple(
        MetricObjective(o.metric, o.aggregate, o.limit, o.credit, o.above, o.probe)
        for o in terms.objectives
    )


async def subject_figures(
    db: Database,
    config: Config,
    terms: ResolvedTerms,
    link_ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> SubjectFigures:
    """The figures of one link or redundant group over [start, end), the measured part
    of a window starting at `start` (quality slots are aligned to it)."""
    quality = None
    rule = quality_rule(terms)
    if rule is not None:
        # The link's availability probes; RTT only where it is a network round trip.
        probes = [
            (link_id, probe.id, probe.kind not in RESPONSE_TIME_KINDS)
            for link_id in link_ids
            for probe in config.link(link_id).probes
            if probe.availability
        ]
        quality = tuple(await quality_figures(db, probes, link_ids, start, end, rule.slot_us))
    metrics = None
    if terms.objectives:
        found = []
        for configured, objective in zip(terms.objectives, metric_objectives(terms), strict=True):
            pairs = [
                (link_id, probe.id)
                for link_id in link_ids
                for probe in objective_probes(configured, config.link(link_id).probes)
            ]
            found.append(await metric_figures(db, objective, pairs, start, end))
        metrics = tuple(found)
    return SubjectFigures(quality, metrics)
