"""Performance over a window's available time, for latency and loss objectives, metric
objectives and quality-based availability.

Only contracts with such terms need it, and only their links' samples in the window are
read (collector.performance, collector.sample_figures). Reads; never writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from collector import Database
from collector.performance import window_performance as stored_performance
from collector.sample_figures import metric_samples, quality_slots
from sla.compute import Measurements
from sla.objectives import MetricFigures, MetricObjective
from sla.quality import SlotFigures
from sla.spans import to_us


async def window_performance(
    db: Database, probes: Sequence[tuple[str, str]], start: datetime, end: datetime
) -> Measurements:
    """Mean and p95 RTT and mean loss over [start, end) of these (link, probe) pairs."""
    found = await stored_performance(db, probes, start, end)
    return Measurements(
        rtt_mean_ms=found.rtt_mean_ms,
        rtt_p95_ms=found.rtt_p95_ms,
        loss_mean_pct=found.loss_mean_pct,
    )


async def quality_figures(
    db: Database,
    probes: Sequence[tuple[str, str, bool]],
    link_ids: Sequence[str],
    start: datetime,
    end: datetime,
    slot_us: int,
) -> list[list[SlotFigures]]:
    """Per link of `link_ids` (a group's members, in order): the figures of its slots
    aligned to `start` in [start, end), from its (link, probe, counts RTT) probes."""
    rows = await quality_slots(db, probes, start, end, timedelta(microseconds=slot_us))
    per_link: dict[str, list[SlotFigures]] = {link_id: [] for link_id in link_ids}
    for row in rows:
        per_link[row.link_id].append(
            SlotFigures(
                to_us(row.starts_at), row.loss_sum, row.loss_count, row.rtt_sum, row.rtt_count
            )
        )
    return [per_link[link_id] for link_id in link_ids]


async def metric_figures(
    db: Database,
    objective: MetricObjective,
    probes: Sequence[tuple[str, str]],
    start: datetime,
    end: datetime,
) -> MetricFigures:
    """What `objective` is measured on: its metric over these (link, probe) pairs."""
    found = await metric_samples(db, probes, objective.metric, start, end, objective.above)
    around = {}
    if found.p95_around is not None:
        around["p95"] = found.p95_around
    if found.p99_around is not None:
        around["p99"] = found.p99_around
    return MetricFigures(found.count, found.total, found.largest, found.over_above, around)
