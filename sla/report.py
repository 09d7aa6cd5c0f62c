"""SLA results for contract windows, from stored link state intervals and maintenance.

This is where contracts meet data: pick the terms in force at the window's start, read
each link's (or redundant group's) state intervals and the maintenance that concerns it,
and hand them to the pure `compute_window`. It reads the database; it never writes.

Every caller goes through `plan_windows`, the one place that decides which contracts a
window label is computed for: never a window that has not begun in the contract's own
zone (a label may be running in Tokyo while it lies ahead in Berlin), and, where the
caller asks, never one that had ended before the contract's links were first measured.
`WindowNotBegun` and `WindowNotMonitored` say so when that leaves nothing to compute.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from psycopg.rows import tuple_row

from collector import Database
from collector.intervals import Interval, clip_intervals
from collector.state_reads import link_intervals
from collector.stored import maintenance_windows
from kernel.config import RESPONSE_TIME_KINDS, Config, Contract, ResolvedTerms
from kernel.domain import MaintenanceWindow
from kernel.errors import LinkwatchError
from sla.compute import (
    Band,
    IncidentRule,
    Measurements,
    Objective,
    Period,
    WindowResult,
    WindowTerms,
    compute_window,
)
from sla.measurements import window_performance
from sla.queries import query
from sla.terms_figures import (
    SubjectFigures,
    metric_objectives,
    quality_rule,
    subject_figures,
)
from sla.windows import Window, WindowKind, parse_window

NAMED_AT_MOST = 5  # contracts named in a message; the rest are counted


@dataclass(frozen=True, slots=True)
class Subject:
    """What one result is about: a link, or a contract's redundant group of links."""

    id: str  # the link id, or "group:<contract id>"
    link_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContractWindow:
    contract: Contract
    customer_id: str
    subject: Subject
    terms: ResolvedTerms
    result: WindowResult


def subjects(contract: Contract) -> list[Subject]:
    if contract.group == "redundant":
        return [Subject(f"group:{contract.id}", tuple(contract.links))]
    return [Subject(link_id, (link_id,)) for link_id in contract.links]


def sla_terms(terms: ResolvedTerms, review_below: Decimal = Decimal(0)) -> WindowTerms:
    """The engine's terms from the contract's, with the ledger's review floor (percent
    coverage, `ledger.review_coverage_below`)."""
    credit = terms.credit
    rule = credit.incidents
    return WindowTerms(
        target_pct=terms.target,
        fee=terms.fee,
        currency=terms.currency,
        step_pct=credit.step,
        per_step_pct=credit.per_step,
        rounding=credit.rounding,
        bands=tuple(Band(b.below, b.credit) for b in credit.bands),
        incident_rule=None
        if rule is None
        else IncidentRule(rule.count, rule.min_duration, rule.credit),
        cap_pct=credit.cap,
        minimum_credit=terms.minimum_credit,
        unknown=terms.unknown,
        maintenance_notice=terms.maintenance_notice,
        budget_warnings=tuple(terms.budget_warnings),
        objectives=objectives(terms),
        min_coverage_pct=terms.min_coverage,
        review_coverage_pct=review_below,
        quality=quality_rule(terms),
        metric_objectives=metric_objectives(terms),
    )


def objectives(terms: ResolvedTerms) -> tuple[Objective, ...]:
    found: list[Objective] = []
    if terms.latency is not None:
        latency = terms.latency
        # One latency objective earns its credit once, even when both limits are missed:
        # the credit rides on the p95 limit when there is one.
        if latency.p95_ms is not None:
            found.append(Objective("latency p95", Decimal(str(latency.p95_ms)), latency.credit))
        if latency.mean_ms is not None:
            credit = latency.credit if latency.p95_ms is None else Decimal(0)
            found.append(Objective("latency mean", Decimal(str(latency.mean_ms)), credit))
    if terms.loss is not None:
        found.append(Objective("loss", Decimal(str(terms.loss.max_pct)), terms.loss.credit))
    return tuple(found)


def concerns(window: MaintenanceWindow, link_id: str, customer_id: str) -> bool:
    """Whether planned work applies to a link: named, its customer named, or global."""
    if not window.link_ids and not window.customer_ids:
        return True
    return link_id in window.link_ids or customer_id in window.customer_ids


def window_for(config: Config, contract: Contract, label: str) -> Window:
    """`label` (2026-W47 or 2026-11) in the contract's customer's time zone."""
    return parse_window(label, config.customer(contract.customer).tz)


class WindowUnavailable(LinkwatchError):
    """A window asked for by label that has nothing to show: `str()` is the label and
    the `reason`, which callers also put after their own name for the label."""

    exit_code = 2

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(f"{label} {reason}")
        self.label = label
        self.reason = reason


class WindowNotBegun(WindowUnavailable):
    """A window asked for has not begun for any contract asked about."""


class WindowNotMonitored(WindowUnavailable):
    """A window asked for ended before any of the contracts' links was first measured."""


@dataclass(frozen=True, slots=True)
class Planned:
    contract: Contract
    window: Window  # in the contract's customer's zone
    terms: ResolvedTerms  # in force at the window's start
    monitored_from: datetime | None = None  # its links' first data, when asked for


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """Which contracts one window label is computed for at `now`, and which not and why."""

    label: str
    todo: tuple[Planned, ...]
    not_begun: tuple[Planned, ...]  # the window starts after now in the contract's zone
    unmonitored: tuple[Planned, ...]  # the window had ended before its links' first data

    def check(self) -> None:
        """Raise the reason when nothing is left to compute because of either rule."""
        if self.todo:
            return
        if self.not_begun:
            raise WindowNotBegun(self.label, not_begun_reason(self.not_begun))
        if self.unmonitored:
            raise WindowNotMonitored(self.label, unmonitored_reason(self.unmonitored))

    def notes(self) -> list[str]:
        """What a person should know about the contracts left out, one line each."""
        lines = []
        if self.not_begun:
            lines.append(f"{self.label} {not_begun_reason(self.not_begun)}")
        if self.unmonitored:
            lines.append(f"{self.label} {unmonitored_reason(self.unmonitored)}")
        return lines


def plan_windows(
    config: Config,
    label: str,
    now: datetime,
    *,
    customer_id: str | None = None,
    contract_ids: Collection[str] | None = None,
    any_kind: bool = False,
    monitored_from: Mapping[str, datetime] | None = None,
) -> WindowPlan:
    """The contracts measured in windows of `label`'s kind (a week label covers the weekly
    contracts, a month label the monthly ones; `any_kind`: every contract), each over
    its own window of that label, split by the rules above. `monitored_from` (link id ->
    first data, see `monitoring_began`) applies the monitoring rule; None leaves it out.
    """
    kind: WindowKind = "week" if "-W" in label else "month"
    wanted = None if contract_ids is None else frozenset(contract_ids)
    todo: list[Planned] = []
    not_begun: list[Planned] = []
    unmonitored: list[Planned] = []
    for contract in config.contracts:
        if customer_id is not None and contract.customer != customer_id:
            continue
        if wanted is not None and contract.id not in wanted:
            continue
        window = window_for(config, contract, label)
        terms = contract.terms_at(window.start.astimezone(UTC), config.plans)
        if terms is None or (terms.window != kind and not any_kind):
            continue
        if not window.has_begun(now):
            not_begun.append(Planned(contract, window, terms))
            continue
        if monitored_from is None:
            todo.append(Planned(contract, window, terms))
            continue
        first = first_data(contract, monitored_from)
        planned = Planned(contract, window, terms, first)
        end = window.end.astimezone(UTC)
        # A running window always counts: its contract may yet be measured in it, and
        # operations need to see the contracts that are not.
        if end <= now and (first is None or first >= end):
            unmonitored.append(planned)
        else:
            todo.append(planned)
    return WindowPlan(label, tuple(todo), tuple(not_begun), tuple(unmonitored))


def first_data(contract: Contract, monitored_from: Mapping[str, datetime]) -> datetime | None:
    """When the first of the contract's links was first measured; None: never yet."""
    return min((monitored_from[i] for i in contract.links if i in monitored_from), default=None)


def not_begun_reason(planned: Sequence[Planned]) -> str:
    by_start: dict[str, list[str]] = {}
    for p in planned:
        start = p.window.start
        when = f"{start:%Y-%m-%d %H:%M %Z} ({start.tzinfo})"
        by_start.setdefault(when, []).append(p.contract.id)
    begins = "; ".join(f"{when} for {_named(ids)}" for when, ids in sorted(by_start.items()))
    return f"has not begun yet: it begins {begins}"


def unmonitored_reason(planned: Sequence[Planned]) -> str:
    never = [p.contract.id for p in planned if p.monitored_from is None]
    later = [p for p in planned if p.monitored_from is not None]
    parts = []
    if later:
        first = min(p.monitored_from for p in later if p.monitored_from is not None)
        zone = later[0].window.start.tzinfo
        ids = [p.contract.id for p in later]
        parts.append(
            f"monitoring of {_named(ids)} began after it ended (the first data is of "
            f"{first.astimezone(zone):%Y-%m-%d %H:%M %Z})"
        )
    if never:
        parts.append(f"the links of {_named(never)} have not been measured yet")
    return "was not measured: " + "; ".join(parts)


def _named(ids: Iterable[str]) -> str:
    listed = list(ids)
    shown = ", ".join(listed[:NAMED_AT_MOST])
    more = len(listed) - NAMED_AT_MOST
    return f"{shown} and {more} more" if more > 0 else shown


async def monitoring_began(db: Database, link_ids: Sequence[str]) -> dict[str, datetime]:
    """link id -> the start of its first stored state interval (its first sample); links
    never measured are absent."""
    if not link_ids:
        return {}
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("monitoring_began"), {"link_ids": list(link_ids)})
        return {link_id: starts_at for link_id, starts_at in await cur.fetchall()}


async def contract_windows(
    db: Database,
    config: Config,
    label: str,
    now: datetime,
    *,
    customer_id: str | None = None,
    contract_ids: Collection[str] | None = None,
    any_kind: bool = False,
    monitored_from: Mapping[str, datetime] | None = None,
) -> list[ContractWindow]:
    """Results for every contract `plan_windows` keeps for `label` at `now`.

    `any_kind` measures every contract over `label`'s window whatever its own kind (a
    weekly contract over a month, say): availability, coverage and budget with the
    contract's terms, for people to read; the credit of such a window is not what the
    contract pays, which is computed over its own windows only.
    """
    plan = plan_windows(
        config,
        label,
        now,
        customer_id=customer_id,
        contract_ids=contract_ids,
        any_kind=any_kind,
        monitored_from=monitored_from,
    )
    return await compute_plan(db, config, plan, now)


async def compute_plan(
    db: Database, config: Config, plan: WindowPlan, now: datetime
) -> list[ContractWindow]:
    """The results of a plan's contracts (those it keeps), from stored data."""
    todo = [(p.contract, p.window, p.terms) for p in plan.todo]
    if not todo:
        return []

    # Batched reads: per-contract queries cost a round trip each, which dominates with
    # thousands of contracts. One interval read spans every window of this label (they
    # differ only by time zone); each contract then takes its own part of it, exactly as
    # a read of its own window would have returned.
    spans = {_utc_span(window, now) for _, window, _ in todo}
    read_start = min(start for start, _, _ in spans)
    read_end = max(measured_end for _, _, measured_end in spans)
    link_ids = list(dict.fromkeys(link_id for c, _, _ in todo for link_id in c.links))
    intervals = await link_intervals(db, link_ids, read_start, read_end)
    planned: dict[tuple[datetime, datetime], list[MaintenanceWindow]] = {}
    for start, end, _ in sorted(spans):
        if (start, end) not in planned:
            planned[start, end] = await maintenance_windows(db, start, end)

    results: list[ContractWindow] = []
    for contract, window, terms in todo:
        start, end, measured_end = _utc_span(window, now)
        performance: dict[str, Measurements] = {}
        if objectives(terms):
            # Only contracts with latency or loss objectives read samples, and only
            # their own links' samples in this window. Latency is the network's round
            # trip: an HTTP probe's rtt is a whole response, so it is left out.
            for subject in subjects(contract):
                probes = [
                    (link_id, probe.id)
                    for link_id in subject.link_ids
                    for probe in config.link(link_id).probes
                    if probe.availability and probe.kind not in RESPONSE_TIME_KINDS
                ]
                performance[subject.id] = await window_performance(db, probes, start, measured_end)
        figures: dict[str, SubjectFigures] = {}
        if quality_rule(terms) is not None or terms.objectives:
            for subject in subjects(contract):
                figures[subject.id] = await subject_figures(
                    db, config, terms, subject.link_ids, start, measured_end
                )
        results += _compute(
            contract,
            window,
            terms,
            now,
            intervals,
            planned[start, end],
            start,
            measured_end,
            performance,
            config.ledger.review_coverage_below,
            figures=figures,
        )
    return results


def _utc_span(window: Window, now: datetime) -> tuple[datetime, datetime, datetime]:
    """(start, end, end of what can be measured so far), in UTC."""
    start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
    return start, end, min(max(now, start), end)


def _compute(
    contract: Contract,
    window: Window,
    terms: ResolvedTerms,
    now: datetime,
    intervals: Mapping[str, Sequence[Interval]],
    planned: Sequence[MaintenanceWindow],
    start: datetime,
    measured_end: datetime,
    performance: Mapping[str, Measurements],
    review_below: Decimal,
    *,
    figures: Mapping[str, SubjectFigures] | None = None,
) -> list[ContractWindow]:
    sla = sla_terms(terms, review_below)
    out = []
    for subject in subjects(contract):
        members: list[Sequence[Period]] = []
        maintenance: list[Sequence[MaintenanceWindow]] = []
        for link_id in subject.link_ids:
            members.append(
                [
                    Period(i.starts_at, i.ends_at or measured_end, i.status)
                    for i in clip_intervals(intervals[link_id], start, measured_end)
                ]
            )
            maintenance.append([m for m in planned if concerns(m, link_id, contract.customer)])
        found = (figures or {}).get(subject.id, SubjectFigures())
        result = compute_window(
            window,
            sla,
            members,
            maintenance,
            now,
            performance.get(subject.id),
            quality=found.quality,
            metric_figures=found.metrics,
        )
        out.append(ContractWindow(contract, contract.customer, subject, terms, result))
    return out
