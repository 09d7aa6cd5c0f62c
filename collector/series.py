"""Raw samples read back for people: one link's samples per time bucket, and its HTTP
probes' newest checks.

The portal's charts need what rollups do not carry (interface traffic, HTTP response
phases) and a finer grain than they keep (the 24-hour charts); these reads take it from
the samples table, one link at a time, each probe's rows a range of the primary key.
Nothing here writes, and nothing here decides what a figure means for a contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query


@dataclass(frozen=True, slots=True)
class SampleBucket:
    """One probe over one bucket of raw samples; None where no sample had the value."""

    probe_id: str
    start: datetime
    rtt_mean_ms: float | None = None
    rtt_p95_ms: float | None = None
    loss_pct: float | None = None
    jitter_ms: float | None = None
    in_bps: float | None = None
    out_bps: float | None = None
    # HTTP response phases, milestones since the check began.
    connected_ms: float | None = None
    first_byte_ms: float | None = None
    total_ms: float | None = None


@dataclass(frozen=True, slots=True)
class LatestCheck:
    """An HTTP probe's newest sample, with the metrics it recorded (its phases)."""

    probe_id: str
    observed_at: datetime
    outcome: str
    error: str | None
    metrics: Mapping[str, float]


async def sample_buckets(
    db: Database,
    link_id: str,
    probe_ids: Sequence[str],
    start: datetime,
    end: datetime,
    width: timedelta,
    origin: datetime,
) -> list[SampleBucket]:
    """The samples of `probe_ids` of `link_id` over [start, end), aggregated per bucket of
    `width` aligned to `origin`, in probe and time order."""
    if not probe_ids:
        return []
    params = {
        "link_id": link_id,
        "probe_ids": list(probe_ids),
        "start": start,
        "end": end,
        "width": width,
        "origin": origin,
    }
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("samples_buckets"), params)
        rows = await cur.fetchall()
    return [SampleBucket(*row) for row in rows]


async def latest_checks(
    db: Database, link_id: str, probe_ids: Sequence[str], now: datetime
) -> list[LatestCheck]:
    """The newest sample at or before `now` of each of `probe_ids` (HTTP probes of
    `link_id`), in the order given; a probe with no sample is left out."""
    if not probe_ids:
        return []
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("samples_http_latest"),
            {"link_id": link_id, "probe_ids": list(probe_ids), "now": now},
        )
        rows = await cur.fetchall()
    order = {probe_id: index for index, probe_id in enumerate(probe_ids)}
    found = [
        LatestCheck(probe_id, at, outcome, error, metrics or {})
        for probe_id, at, outcome, error, metrics in rows
    ]
    return sorted(found, key=lambda c: order[c.probe_id])
