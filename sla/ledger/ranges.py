"""Which windows the ledger computes: the spans of time whose window rows may change.

Pure functions of the config and a time, except `history_range`, which reads the oldest
stored sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg.rows import tuple_row

from collector import Database
from kernel.config import Config
from sla.queries import query
from sla.windows import WINDOW_KINDS, WindowKind, window_containing


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Every contract window overlapping [start, end) that has begun by `now`."""

    start: datetime
    end: datetime


def window_labels(config: Config, span: TimeRange, now: datetime) -> list[str]:
    """Labels of the windows, in the zones of the contracts, that overlap `span` and have
    begun by `now` in some zone. A label begun in one zone may lie ahead in another:
    `plan_windows` computes each contract only over a window begun in its own zone."""
    end = min(span.end, now)
    labels: set[str] = set()
    if span.start >= end:
        return []
    kinds = _kinds(config)
    for zone in {config.customer(c.customer).tz for c in config.contracts}:
        for kind in kinds:
            window = window_containing(kind, zone, span.start)
            while window.start < end:
                labels.add(window.label)
                window = window.next()
    return sorted(labels)


def samples_range(config: Config, first: datetime, last: datetime) -> TimeRange:
    """The windows that samples observed in [first, last] can change: states reach back
    to the first sample of a confirmed outage and forward to the last one's staleness."""
    margin = max(
        (p.confirm * p.interval + p.stale_after_effective for link in config.links
         for p in link.probes),
        default=timedelta(0),
    )  # fmt: skip
    return TimeRange(first - margin, last + margin)


def recent_range(config: Config, now: datetime) -> TimeRange:
    """The windows whose rows may still be open: the running one and those in grace."""
    grace = max(
        (t.grace for c in config.contracts if (t := c.terms_at(now, config.plans)) is not None),
        default=timedelta(0),
    )
    # The running window of the longest kind in use reaches back to its own start: a
    # running year needs its whole length. A day spare for zones ahead of UTC.
    longest = {"week": 7, "month": 31, "quarter": 92, "year": 366}
    days = max((longest[kind] for kind in _kinds(config)), default=31)
    return TimeRange(now - grace - timedelta(days=days + 1), now)


def running_labels(config: Config, now: datetime) -> list[str]:
    """The labels of the windows running at `now` in each contract zone: the week and
    month always, the quarter and year where a contract is measured in them."""
    kinds = _kinds(config)
    zones = {config.customer(c.customer).tz for c in config.contracts}
    return sorted({window_containing(kind, zone, now).label for zone in zones for kind in kinds})


def _kinds(config: Config) -> tuple[WindowKind, ...]:
    """Weeks and months (the portal shows both for every contract), and quarters and
    years only where some contract version is measured in them: labels nobody uses cost
    a computation each."""
    used = {"week", "month"}
    for contract in config.contracts:
        layers = [p for p in config.plans if p.id == contract.plan]
        used |= {t.window for t in (*layers, contract, *contract.versions) if t.window}
    return tuple(kind for kind in WINDOW_KINDS if kind in used)


async def history_range(db: Database, now: datetime) -> TimeRange | None:
    """From the oldest stored sample to now; None when nothing is stored."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("ledger_first_sample"))
        row = await cur.fetchone()
    if row is None or row[0] is None:
        return None
    return TimeRange(row[0], now)
