"""Performance figures over stored samples: what latency and loss objectives measure.

Reads; never writes. The SLA engine turns the figures into its own measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query


@dataclass(frozen=True, slots=True)
class Performance:
    """RTT and loss of the available samples; None where there were none."""

    rtt_mean_ms: float | None = None
    rtt_p95_ms: float | None = None
    loss_mean_pct: float | None = None


async def window_performance(
    db: Database, probes: Sequence[tuple[str, str]], start: datetime, end: datetime
) -> Performance:
    """Mean and p95 RTT and mean loss over [start, end) of these (link, probe) pairs."""
    if not probes:
        return Performance()
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("samples_window_performance"),
            {
                "link_ids": [link for link, _ in probes],
                "probe_ids": [probe for _, probe in probes],
                "start": start,
                "end": end,
            },
        )
        row = await cur.fetchone()
    assert row is not None
    return Performance(*row)
