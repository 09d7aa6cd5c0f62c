"""Performance over a window's available time, for latency and loss objectives.

Only contracts with such objectives need it, and only their links' samples in the window
are read (a primary-key range per probe). Reads; never writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from psycopg.rows import tuple_row

from collector import Database
from sla.compute import Measurements

# RTT and loss of the available (up or degraded) samples of the given probes: a down
# sample has no RTT, and its loss is the outage itself, which availability already counts.
WINDOW_PERFORMANCE = """
SELECT avg(s.rtt_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY s.rtt_ms),
       avg(s.loss_pct)
FROM unnest(%(link_ids)s::text[], %(probe_ids)s::text[]) AS p (link_id, probe_id)
JOIN samples AS s
  ON s.link_id = p.link_id AND s.probe_id = p.probe_id
 AND s.observed_at >= %(start)s AND s.observed_at < %(end)s
 AND s.outcome IN ('up', 'degraded')
"""


async def window_performance(
    db: Database, probes: Sequence[tuple[str, str]], start: datetime, end: datetime
) -> Measurements:
    """Mean and p95 RTT and mean loss over [start, end) of these (link, probe) pairs."""
    if not probes:
        return Measurements()
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            WINDOW_PERFORMANCE,
            {
                "link_ids": [link for link, _ in probes],
                "probe_ids": [probe for _, probe in probes],
                "start": start,
                "end": end,
            },
        )
        row = await cur.fetchone()
    assert row is not None
    mean, p95, loss = row
    return Measurements(rtt_mean_ms=mean, rtt_p95_ms=p95, loss_mean_pct=loss)
