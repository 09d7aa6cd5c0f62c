"""Exact figures over stored samples for quality-based availability and metric objectives.

Both read only the given probes' available samples in a window and return sums and
counts in `Decimal` (numeric in the database), never a float mean, so that the SLA
engine can compare them with a contract's limits exactly. Reads; never writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query


@dataclass(frozen=True, slots=True)
class QualitySlot:
    """The sums and counts of loss and RTT of one link's available samples in a slot."""

    link_id: str
    starts_at: datetime
    loss_sum: Decimal
    loss_count: int
    rtt_sum: Decimal
    rtt_count: int


async def quality_slots(
    db: Database,
    probes: Sequence[tuple[str, str, bool]],
    start: datetime,
    end: datetime,
    slot: timedelta,
) -> list[QualitySlot]:
    """Per link and slot (aligned to `start`) in [start, end): (link, probe, counts its
    RTT) triples in; slots without an available sample are absent."""
    if not probes or end <= start:
        return []
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("samples_quality_slots"),
            {
                "link_ids": [link for link, _, _ in probes],
                "probe_ids": [probe for _, probe, _ in probes],
                "rtt": [rtt for _, _, rtt in probes],
                "slot": slot,
                "origin": start,
                "start": start,
                "end": end,
            },
        )
        rows = await cur.fetchall()
    return [QualitySlot(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class MetricSamples:
    """One metric over the available samples: see samples_metric_figures.sql."""

    count: int
    total: Decimal
    largest: Decimal | None
    over_above: int
    p95_around: tuple[Decimal, Decimal] | None
    p99_around: tuple[Decimal, Decimal] | None


async def metric_samples(
    db: Database,
    probes: Sequence[tuple[str, str]],
    metric: str,
    start: datetime,
    end: datetime,
    above: Decimal | None = None,
) -> MetricSamples:
    """`metric` (a sample column or a key of its `metrics`) of these (link, probe) pairs'
    available samples in [start, end)."""
    if not probes or end <= start:
        return MetricSamples(0, Decimal(0), None, 0, None, None)
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("samples_metric_figures"),
            {
                "link_ids": [link for link, _ in probes],
                "probe_ids": [probe for _, probe in probes],
                "metric": metric,
                "above": above,
                "start": start,
                "end": end,
            },
        )
        row = await cur.fetchone()
    assert row is not None
    count, total, largest, over, p95_low, p95_high, p99_low, p99_high = row
    return MetricSamples(
        count,
        Decimal(total),
        largest,
        over,
        None if p95_low is None else (p95_low, p95_high),
        None if p99_low is None else (p99_low, p99_high),
    )
