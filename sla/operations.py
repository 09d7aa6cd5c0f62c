"""The operations report: how fast outages were acknowledged and restored, per month.

Per outage, the time to acknowledge (TTA: from its confirmed start to its
acknowledgement) and the time to restore (TTR: from its confirmed start to its end).
Per contract and overall, over the outages that began in a calendar month (UTC, the
clock every NOC shares): how many, the median, p90 and worst TTA and TTR, and how many
were acknowledged within the contract's `acknowledge.within` (exactly at it too).

Exact: microseconds and `Fraction`, never floats. Percentiles are linear between the
values around rank q × (n − 1), as `percentile_cont` (the median is p50). An outage
never acknowledged has no TTA: it ranks above every acknowledged one, so a median or
p90 that falls on it reads "never", and it is never within the objective. An outage
still running has no TTR yet: it is counted as running and left out of the TTR figures.
`summarize` is pure; `operations_report` reads the outages and acknowledgements.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from collector.acknowledgements import Acknowledgement, acknowledgements
from collector.database import Database
from collector.state_reads import Incident, incidents
from kernel.config import Config
from sla.windows import Window, parse_window

_US = timedelta(microseconds=1)
UTC_ZONE = ZoneInfo("UTC")


class _Never:
    """The TTA of an outage never acknowledged: after every real one."""

    def __repr__(self) -> str:
        return "NEVER"


NEVER = _Never()
Figure = Fraction | _Never  # microseconds, or never


@dataclass(frozen=True, slots=True)
class OutageResponse:
    link_id: str
    start: datetime
    end: datetime | None  # None: still running
    acknowledgement: Acknowledgement | None

    @property
    def tta_us(self) -> int | None:
        a = self.acknowledgement
        return None if a is None else (a.at - self.start) // _US

    @property
    def ttr_us(self) -> int | None:
        return None if self.end is None else (self.end - self.start) // _US


def within(response: OutageResponse, objective: timedelta | None) -> bool | None:
    """Whether it was acknowledged within `objective`; None without an objective."""
    if objective is None:
        return None
    tta = response.tta_us
    return tta is not None and tta <= objective // _US


def percentile(values: Sequence[Figure], q: Fraction) -> Figure | None:
    """Linear between the values around rank q × (n − 1) of the sorted `values`."""
    if not values:
        return None
    ordered = sorted(
        values, key=lambda v: (isinstance(v, _Never), 0 if isinstance(v, _Never) else v)
    )
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    share = rank - low
    below = ordered[low]
    if share == 0:
        return below
    above = ordered[low + 1]
    if isinstance(below, _Never) or isinstance(above, _Never):
        return NEVER
    return below + (above - below) * share


@dataclass(frozen=True, slots=True)
class Spread:
    """Median, p90 and worst of some outages' times; None: no outage to measure."""

    median: Figure | None
    p90: Figure | None
    worst: Figure | None

    @classmethod
    def of(cls, values: Sequence[Figure]) -> Spread:
        return cls(
            percentile(values, Fraction(1, 2)),
            percentile(values, Fraction(9, 10)),
            percentile(values, Fraction(1)),
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """One contract's (or every link's) outages of the month."""

    name: str  # the contract id, or "overall"
    customer_id: str | None
    objective: timedelta | None  # acknowledge.within; overall: None
    outages: int
    acknowledged: int
    never_acknowledged: int
    with_objective: int  # outages an objective applies to
    within_objective: int
    running: int
    tta: Spread
    ttr: Spread


def summarize(
    name: str,
    found: Sequence[OutageResponse],
    objectives: Sequence[timedelta | None],
    *,
    customer_id: str | None = None,
    objective: timedelta | None = None,
) -> Summary:
    """`objectives[i]`: the objective outage `i` is held to (None: none)."""
    ttas: list[Figure] = [NEVER if r.tta_us is None else Fraction(r.tta_us) for r in found]
    ttrs: list[Figure] = [Fraction(r.ttr_us) for r in found if r.ttr_us is not None]
    judged = [within(r, o) for r, o in zip(found, objectives, strict=True)]
    acked = sum(1 for r in found if r.acknowledgement is not None)
    return Summary(
        name=name,
        customer_id=customer_id,
        objective=objective,
        outages=len(found),
        acknowledged=acked,
        never_acknowledged=len(found) - acked,
        with_objective=sum(1 for j in judged if j is not None),
        within_objective=sum(1 for j in judged if j),
        running=sum(1 for r in found if r.end is None),
        tta=Spread.of(ttas),
        ttr=Spread.of(ttrs),
    )


@dataclass(frozen=True, slots=True)
class OperationsReport:
    month: Window
    contracts: tuple[Summary, ...]
    overall: Summary
    outages: tuple[OutageResponse, ...]  # oldest first


def month_window(label: str) -> Window:
    window = parse_window(label, UTC_ZONE)
    if window.kind != "month":
        raise ValueError(f"{label!r} is not a month; write it as 2026-11")
    return window


def report(config: Config, month: Window, found: Iterable[OutageResponse]) -> OperationsReport:
    """Pure: the figures of the outages that began in `month`."""
    chosen = sorted(
        (r for r in found if month.start <= r.start < month.end), key=lambda r: (r.start, r.link_id)
    )
    summaries = []
    strictest: dict[tuple[str, datetime], timedelta] = {}
    for contract in config.contracts:
        mine: list[OutageResponse] = []
        held: list[timedelta | None] = []
        for r in chosen:
            if r.link_id not in contract.links:
                continue
            terms = contract.terms_at(r.start, config.plans)
            if terms is None:
                continue
            goal = terms.acknowledge.within if terms.acknowledge is not None else None
            mine.append(r)
            held.append(goal)
            if goal is not None:
                key = (r.link_id, r.start)
                strictest[key] = min(goal, strictest.get(key, goal))
        at_end = contract.terms_at(month.end - _US, config.plans)
        goal_now = at_end.acknowledge.within if at_end and at_end.acknowledge else None
        summaries.append(
            summarize(contract.id, mine, held, customer_id=contract.customer, objective=goal_now)
        )
    overall = summarize("overall", chosen, [strictest.get((r.link_id, r.start)) for r in chosen])
    return OperationsReport(month, tuple(summaries), overall, tuple(chosen))


async def operations_report(
    db: Database, config: Config, label: str, now: datetime
) -> OperationsReport:
    """The month's report as the stored outages and acknowledgements stand at `now`."""
    month = month_window(label)
    link_ids = [link.id for link in config.links]
    end = min(month.end, now + _US)
    found: list[Incident] = []
    if month.start < end:
        found = [
            i for i in await incidents(db, link_ids, month.start, end) if i.starts_at >= month.start
        ]
    acks = await acknowledgements(db, link_ids, month.start, month.end)
    by_key = {(a.link_id, a.outage_start): a for a in acks}
    return report(
        config,
        month,
        [
            OutageResponse(i.link_id, i.starts_at, i.ends_at, by_key.get((i.link_id, i.starts_at)))
            for i in found
        ],
    )


def exact_seconds(value: Figure | None) -> str | None:
    """A figure as exact seconds ("never" for an outage never acknowledged)."""
    if value is None:
        return None
    if isinstance(value, _Never):
        return "never"
    s = value / 1_000_000
    places = 0
    while (s * 10**places).denominator != 1:
        places += 1
    text = f"{Decimal((s * 10**places).numerator).scaleb(-places):f}"
    return text


def started(r: OutageResponse) -> str:
    return r.start.astimezone(UTC).isoformat()
