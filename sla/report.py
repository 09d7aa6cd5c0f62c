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
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from psycopg.rows import tuple_row

from collector import Database
from collector.attributions import attributions
from collector.intervals import Interval, clip_intervals
from collector.state_reads import incidents, link_intervals
from collector.stored import maintenance_windows
from kernel.config import RESPONSE_TIME_KINDS, Config, Contract, ResolvedTerms
from kernel.config.hours import covered_ranges
from kernel.domain import MaintenanceWindow
from kernel.errors import LinkwatchError
from sla.annual_cap import AnnualCap, cap_annually
from sla.compute import (
    Band,
    Exclusion,
    IncidentRule,
    Measurements,
    Objective,
    Period,
    WindowResult,
    WindowTerms,
    compute_window,
    decide_maintenance,
    exclusions,
    outside_hours,
)
from sla.measurements import window_performance
from sla.queries import query
from sla.restore import RestoreRule, clock_end_us
from sla.spans import SpanSet, from_us, to_us
from sla.terms_figures import (
    SubjectFigures,
    metric_objectives,
    quality_rule,
    subject_figures,
)
from sla.windows import Window, WindowKind, label_kind, parse_window, window_containing

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
    result: WindowResult  # its credit amount is what is paid, after the annual cap
    annual_cap: AnnualCap | None = None  # how the annual cap bore on it, if there is one


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
        restore=restore_rule(terms),
        hours=None if terms.hours is None else covered_ranges(terms.hours),
        holidays=tuple(terms.holidays),
        customer_caused=terms.customer_caused,
        quality=quality_rule(terms),
        metric_objectives=metric_objectives(terms),
    )


def restore_rule(terms: ResolvedTerms) -> RestoreRule | None:
    restore = terms.restore
    if restore is None:
        return None
    return RestoreRule(
        restore.within, restore.credit_per, restore.credit_pct, restore.cap_pct, restore.warn_at_pct
    )


@dataclass(frozen=True, slots=True)
class RestoreTiming:
    """Where the restore clock of a subject's running outage stands at a moment."""

    counted_us: int  # of the outage so far, excluded time left out
    deadline: datetime  # when the clock reaches `within` (in the past once overdue)


# How far ahead a deadline is looked for in the covered hours: a first stretch that
# holds nearly every deadline cheaply, then up to a year for sparse schedules.
_DEADLINE_HORIZONS = (timedelta(days=14), timedelta(days=366))


def restore_clock_at(
    item: ContractWindow, now: datetime, *, running: bool = True
) -> RestoreTiming | None:
    """The restore clock of `item`'s outage still running at its measured end, timed on
    to `now` (`running`: the outage goes on until `now`) and to its deadline, both over
    covered time only; None without a restore term or a running outage. Time planned as
    maintenance from the measured end on is not known to stop it."""
    rule = restore_rule(item.terms)
    result = item.result
    if rule is None or not result.continuing:
        return None
    terms = sla_terms(item.terms)
    zone = result.window.start.tzinfo
    since = result.measured_until.astimezone(zone)
    counted = result.continuing[-1].counted_us
    if running and now > since:
        counted += (SpanSet.between(since, now) - outside_hours(terms, since, now)).length_us
    at = max(now, since)
    left = rule.within // timedelta(microseconds=1) - counted
    for horizon in _DEADLINE_HORIZONS:
        stops = outside_hours(terms, at.astimezone(zone), at + horizon)
        end_us = clock_end_us(to_us(at), left, stops)
        if end_us < to_us(at + horizon) or horizon == _DEADLINE_HORIZONS[-1]:
            break
    return RestoreTiming(counted, from_us(end_us))


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


def terms_deciding(config: Config, contract: Contract, at: datetime) -> ResolvedTerms | None:
    """The terms the engine measures the moment `at` by: the version in force at the start
    of the contract's window holding it; None before the contract starts."""
    now_in_force = contract.terms_at(at, config.plans)
    if now_in_force is None:
        return None
    zone = config.customer(contract.customer).tz
    window = window_containing(now_in_force.window, zone, at)
    return contract.terms_at(window.start.astimezone(UTC), config.plans) or now_in_force


@dataclass(frozen=True, slots=True)
class OutageExclusion:
    """What one contract's qualifying maintenance excludes of one outage of a link."""

    contract_id: str
    excluded_us: int  # of the outage: the time its qualifying windows cover
    windows: tuple[MaintenanceWindow, ...]  # those windows, in order of their start


def outage_exclusions(
    config: Config,
    contracts: Iterable[Contract],
    link_id: str,
    customer_id: str,
    start: datetime,
    end: datetime,
    maintenance: Iterable[MaintenanceWindow],
) -> list[OutageExclusion]:
    """Per contract of the link, how much of its outage [start, end) the contract's
    qualifying maintenance excludes, by the engine's own rule (`decide_maintenance`,
    `exclusions`) under the terms the engine measures the outage's start by: for a
    redundant group, only while every member is in qualifying maintenance, as
    `compute_window` excludes a group's time. Pure."""
    windows = list(maintenance)
    outage = SpanSet.between(start, end)
    found = []
    for contract in contracts:
        terms = terms_deciding(config, contract, start)
        if terms is None:
            continue
        members = contract.links if contract.group == "redundant" else [link_id]
        excluded = outage
        covering: list[Exclusion] = []
        for member in members:
            concerned = [w for w in windows if concerns(w, member, customer_id)]
            qualifying = [
                e
                for e in exclusions(decide_maintenance(concerned, terms.maintenance_notice))
                if e.start < end and e.end > start
            ]
            excluded &= SpanSet.of((to_us(e.start), to_us(e.end)) for e in qualifying)
            covering += [e for e in qualifying if all(e.window != c.window for c in covering)]
        named = sorted(covering, key=lambda e: e.start) if excluded.length_us else []
        found.append(
            OutageExclusion(contract.id, excluded.length_us, tuple(e.window for e in named))
        )
    return found


def window_for(config: Config, contract: Contract, label: str) -> Window:
    """`label` (2026-W47, 2026-11, 2026-Q3 or 2026) in the contract's customer's zone."""
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
    contracts, a month label the monthly ones, a quarter or year label the quarterly or
    yearly ones; `any_kind`: every contract), each over
    its own window of that label, split by the rules above. `monitored_from` (link id ->
    first data, see `monitoring_began`) applies the monitoring rule; None leaves it out.
    """
    kind: WindowKind | None = label_kind(label)
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
    db: Database, config: Config, plan: WindowPlan, now: datetime, *, annual_cap: bool = True
) -> list[ContractWindow]:
    """The results of a plan's contracts (those it keeps), from stored data, with the
    annual credit cap applied on the ledger's figures for the earlier windows of the year
    (`annual_cap=False`: the ledger, which applies it in its own transaction)."""
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
    restore_from = await _restore_reads(db, todo, now)
    if restore_from:
        # Time to restore needs its outages whole: from their confirmed start, and
        # whether they still run just after the measured end.
        read_start = min(read_start, *restore_from.values())
        read_end += _JUST_AFTER
    intervals = await link_intervals(db, link_ids, read_start, read_end)
    attributed: dict[str, list[tuple[datetime, datetime]]] = {}
    for found in await attributions(db, link_ids, read_start, read_end, in_force=True):
        attributed.setdefault(found.link_id, []).append((found.starts_at, found.ends_at))
    planned: dict[tuple[datetime, datetime], list[MaintenanceWindow]] = {}
    for start, end, _ in sorted(spans):
        if (start, end) not in planned:
            planned[start, end] = await maintenance_windows(db, start, end)
    for contract, window, _ in todo:
        if contract.id in restore_from:
            start, end, _ = _utc_span(window, now)
            early = restore_from[contract.id]
            if (early, end) not in planned:
                planned[early, end] = await maintenance_windows(db, early, end)

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
            planned[restore_from.get(contract.id, start), end],
            start,
            measured_end,
            performance,
            config.ledger.review_coverage_below,
            restore_from=restore_from.get(contract.id),
            attributed=attributed,
            figures=figures,
        )
    if annual_cap and any(item.terms.credit.annual_cap_pct is not None for item in results):
        async with db.connection() as conn:
            results = await cap_annually(conn, results)
    return results


_JUST_AFTER = timedelta(microseconds=1)


async def _restore_reads(
    db: Database, todo: Sequence[tuple[Contract, Window, ResolvedTerms]], now: datetime
) -> dict[str, datetime]:
    """contract id -> where its reads begin, for contracts with a `restore` term: the
    confirmed start of the earliest outage of its links running at its window's start,
    else that start. One query per distinct window start."""
    starts: dict[datetime, list[tuple[Contract, Window]]] = {}
    for contract, window, terms in todo:
        if terms.restore is not None:
            starts.setdefault(_utc_span(window, now)[0], []).append((contract, window))
    found: dict[str, datetime] = {}
    for start, contracts in starts.items():
        ids = list(dict.fromkeys(i for c, _ in contracts for i in c.links))
        running: dict[str, datetime] = {}
        for outage in await incidents(db, ids, start, start + _JUST_AFTER):
            if outage.starts_at < start and (outage.ends_at is None or outage.ends_at > start):
                running[outage.link_id] = min(outage.starts_at, running.get(outage.link_id, start))
        for contract, _ in contracts:
            found[contract.id] = min([start, *(running[i] for i in contract.links if i in running)])
    return found


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
    restore_from: datetime | None = None,
    attributed: Mapping[str, Sequence[tuple[datetime, datetime]]] | None = None,
    figures: Mapping[str, SubjectFigures] | None = None,
) -> list[ContractWindow]:
    sla = sla_terms(terms, review_below)
    clip_from, clip_until = start, measured_end
    if restore_from is not None:
        # Periods before the window and just after its measured end are for the restore
        # clock only; the window's own figures count nothing outside it.
        clip_from, clip_until = restore_from, measured_end + _JUST_AFTER
    out = []
    for subject in subjects(contract):
        members: list[Sequence[Period]] = []
        maintenance: list[Sequence[MaintenanceWindow]] = []
        for link_id in subject.link_ids:
            members.append(
                [
                    Period(i.starts_at, i.ends_at or clip_until, i.status)
                    for i in clip_intervals(intervals[link_id], clip_from, clip_until)
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
            customer_caused=[(attributed or {}).get(i, ()) for i in subject.link_ids],
            quality=found.quality,
            metric_figures=found.metrics,
        )
        out.append(ContractWindow(contract, contract.customer, subject, terms, result))
    return out
