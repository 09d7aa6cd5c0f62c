"""The printable monthly SLA report for one customer: every figure, and how it was reached.

For a month it shows the customer's monthly contracts measured over that month and their
weekly contracts over each ISO week that overlaps it, per contract and link: the window,
the maintenance considered (with why it was or was not excluded), unknown time under the
contract's policy, coverage, down time, eligible time, availability, the error budget, each
outage, and the credit worked out step by step, so a customer or a billing clerk can check
every number by hand. Times are shown in the customer's time zone.

Like the ledger, it covers only windows that have begun in the customer's zone and that
end after the contract's links were first measured, and it calls a window final only once
its ledger row is closed: the report, the list of reports and the ledger agree on what
is final. A month that has not begun has no report.

It reads the database and renders HTML; it never writes, and it never computes a billed
figure of its own: every number is `compute_window`'s, only formatted (percentages
truncated, never rounded up) and explained.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from psycopg.rows import tuple_row

from collector import Database
from collector.attributions import attributions
from collector.state_reads import Incident, incidents
from kernel.config import Config, Contract, Customer, ResolvedTerms
from kernel.config.links import Vantage
from kernel.formatting import (
    count_of,
    duration_text,
    money,
    nowrap_dates,
    ratio_availability_text,
    share_text,
    target_text,
)
from kernel.money import quantise
from sla.attributions import describe, policy_words
from sla.compute import (
    Exclusion,
    MaintenanceDecision,
    WindowResult,
    exclusions,
    seconds,
    truncate_pct,
)
from sla.hours import schedule_of, schedules
from sla.print_css import css_string
from sla.queries import query
from sla.records import review_reason
from sla.report import (
    ContractWindow,
    WindowNotBegun,
    WindowPlan,
    compute_plan,
    concerns,
    first_data,
    monitoring_began,
    plan_windows,
    restore_rule,
    subjects,
)
from sla.restore import RestoreRule
from sla.restore_text import continuing_text, restore_text
from sla.restore_text import rule_text as restore_rule_text
from sla.spans import SpanSet, to_us
from sla.windows import Window, parse_window, window_containing

# A window's figures are final once its ledger row has left `open` (its grace is over).
FINAL_STATUSES = ("closed", "approved", "applied")
MonthState = Literal["running", "provisional", "complete"]

UNKNOWN_POLICY = {
    "exclude": "removed from the eligible time (the contract's default)",
    "count_as_up": "counted as available time",
    "count_as_down": "counted as down time",
}

_environment = Environment(
    loader=PackageLoader("sla", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["dates"] = nowrap_dates
_environment.filters["css_string"] = css_string  # the printed pages' running header


# --- what the template shows ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a window's calculation: what, the figure, and how it was reached."""

    label: str
    value: str
    method: str = ""
    strong: bool = False


@dataclass(frozen=True, slots=True)
class MonthlyMaintenance:
    id: str
    description: str
    starts_at: str
    ends_at: str
    announced_at: str
    excluded: bool
    reason: str
    cancelled_at: str | None = None


@dataclass(frozen=True, slots=True)
class OutageView:
    number: int
    starts_at: str
    ends_at: str
    duration: str
    duration_s: str
    detail: str


@dataclass(frozen=True, slots=True)
class ObjectiveView:
    name: str
    limit: str
    measured: str
    met: str
    credit: str


@dataclass(frozen=True, slots=True)
class Measurement:
    """One contract window for one link (or redundant group)."""

    anchor: str
    subject: str
    subject_note: str
    window_kind: str
    window_label: str
    window_span: str
    outside_month: bool
    status: str  # final or provisional
    verdict: str  # met, missed, n/a
    availability: str
    target: str
    credit_pct: str
    credit_amount: str
    currency: str
    rows: tuple[Row, ...]
    credit_rows: tuple[Row, ...]
    budget_rows: tuple[Row, ...]
    outages: tuple[OutageView, ...]
    maintenance: tuple[MonthlyMaintenance, ...]
    objectives: tuple[ObjectiveView, ...]
    review: str | None = None  # why a person checks this window before its credit is paid


@dataclass(frozen=True, slots=True)
class ContractView:
    id: str
    kind: str  # "monthly" or "weekly"
    terms: tuple[Row, ...]
    measurements: tuple[Measurement, ...]
    credit_total: str
    note: str


@dataclass(frozen=True, slots=True)
class ReportView:
    customer_name: str
    customer_id: str
    month_label: str
    month_name: str
    zone: str
    period: str
    generated: str
    provisional: bool
    contracts: tuple[ContractView, ...]
    totals: tuple[tuple[str, str], ...]  # (currency, amount)
    weeks: tuple[str, ...]
    boundary_weeks: tuple[str, ...]
    summary: tuple[Measurement, ...] = field(default=())
    not_measured: tuple[str, ...] = field(default=())  # windows left out, and why
    several_sites: bool = False  # some link is measured from several sites
    # (contract, its covered hours in words) for the contracts measured only in them
    schedules: tuple[tuple[str, str], ...] = field(default=())
    # Outage time attributed to the customer in the report's windows (withdrawn too),
    # each with its reason, and what each contract does with such time.
    attributions: tuple[str, ...] = field(default=())
    customer_caused: tuple[str, ...] = field(default=())


# --- building it -------------------------------------------------------------------------


def check_month(customer: Customer, label: str, now: datetime) -> Window:
    """`label` as a month in the customer's zone; ValueError when it is not a month,
    `WindowNotBegun` when it has not begun there."""
    month = parse_window(label, customer.tz)
    if month.kind != "month":
        raise ValueError(f"{label!r} is not a month; use e.g. 2026-11")
    if not month.has_begun(now):
        start = month.start
        raise WindowNotBegun(
            label,
            f"has not begun yet for {customer.name}: it begins "
            f"{start:%Y-%m-%d %H:%M %Z} ({customer.timezone})",
        )
    return month


def report_plans(
    config: Config,
    customer_id: str,
    month: Window,
    now: datetime,
    monitored_from: Mapping[str, datetime],
) -> list[WindowPlan]:
    """What a month's report covers: the month for monthly contracts, every ISO week
    overlapping it for weekly ones, and for quarterly and yearly ones their window when it
    ends with the month (the report of the month it is billed in) or is running now, by
    the same rules as the ledger's rows."""
    return [
        plan_windows(
            config, window.label, now, customer_id=customer_id, monitored_from=monitored_from
        )
        for window in (month, *weeks_overlapping(month), *longer_windows(month, now))
    ]


def longer_windows(month: Window, now: datetime) -> list[Window]:
    """The quarter and the year around `month` that a report of it shows: the one ending
    with the month, or, in the report of the month running at `now`, the one running."""
    assert isinstance(month.start.tzinfo, ZoneInfo)
    current = month.start.astimezone(UTC) <= now < month.end.astimezone(UTC)
    found = []
    for kind in ("quarter", "year"):
        window = window_containing(kind, month.start.tzinfo, month.start)
        if window.end == month.end or current:
            found.append(window)
    return found


def _customer_links(config: Config, customer_id: str) -> list[str]:
    found = (i for c in config.contracts if c.customer == customer_id for i in c.links)
    return list(dict.fromkeys(found))


async def ledger_statuses(
    db: Database, customer_id: str, labels: Sequence[str]
) -> dict[tuple[str, str, str], str]:
    """(contract, subject, window label) -> status of the customer's window rows."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("ledger_customer_statuses"), {"customer": customer_id, "labels": list(labels)}
        )
        return {(c, s, w): status for c, s, w, status in await cur.fetchall()}


async def monthly_report(
    db: Database,
    config: Config,
    customer_id: str,
    month_label: str,
    now: datetime,
    *,
    back_href: str | None = None,
) -> str:
    """The customer's report for `month_label` (e.g. 2026-11) as one HTML document;
    `back_href` (the portal's list of reports) adds a link back there, never printed.

    Raises ValueError for an unknown customer or a label that is not a month, and
    `WindowNotBegun` for a month that has not begun in the customer's zone.
    """
    customer = next((c for c in config.customers if c.id == customer_id), None)
    if customer is None:
        raise ValueError(f"{customer_id!r} is not a customer")
    tz = customer.tz
    month = check_month(customer, month_label, now)
    weeks = weeks_overlapping(month)

    began = await monitoring_began(db, _customer_links(config, customer_id))
    plans = report_plans(config, customer_id, month, now, began)
    items: list[ContractWindow] = []
    for plan in plans:
        items += await compute_plan(db, config, plan, now)
    statuses = await ledger_statuses(db, customer_id, [plan.label for plan in plans])

    link_ids = sorted({link for item in items for link in item.subject.link_ids})
    found: list[Incident] = []
    if items:
        first = min(item.result.window.start for item in items).astimezone(UTC)
        last = max(item.result.window.end for item in items).astimezone(UTC)
        found = await incidents(db, link_ids, first, last)

    order = {contract.id: n for n, contract in enumerate(config.contracts)}
    by_contract: dict[str, list[ContractWindow]] = {}
    for item in sorted(
        items,
        key=lambda i: (order[i.contract.id], i.subject.id, i.result.window.start),
    ):
        by_contract.setdefault(item.contract.id, []).append(item)

    # The customer's links measured from several sites, with their vantage: read once.
    vantage = {
        link.id: link.vantage
        for link in config.links
        if link.customer == customer.id and link.vantage is not None
    }
    contracts = tuple(
        _contract_view(config, group, tz, month, now, found, statuses, vantage)
        for group in by_contract.values()
    )
    totals: dict[str, Decimal] = {}
    for group in by_contract.values():
        for item in group:
            credit = item.result.credit
            totals[credit.currency] = totals.get(credit.currency, Decimal(0)) + credit.amount
    view = ReportView(
        customer_name=customer.name,
        customer_id=customer.id,
        month_label=month.label,
        month_name=month.start.strftime("%B %Y"),
        zone=tz.key,
        period=f"{_moment(month.start, tz)} to {_moment(month.end, tz)}",
        generated=_moment(now, tz),
        provisional=any(
            m.status != "final" for contract in contracts for m in contract.measurements
        ),
        contracts=contracts,
        totals=tuple((cur, _money(amount, cur)) for cur, amount in totals.items()),
        weeks=tuple(w.label for w in weeks),
        boundary_weeks=tuple(w.label for w in weeks if w.start < month.start or w.end > month.end),
        summary=tuple(m for contract in contracts for m in contract.measurements),
        not_measured=tuple(note for plan in plans for note in plan.notes()),
        several_sites=any(len(v.sites) > 1 for v in vantage.values()),
        schedules=tuple(schedules(items).items()),
        **await _attributions(db, config, link_ids, items, tz),
    )
    return _environment.get_template("monthly.html").render(report=view, back_href=back_href)


async def _attributions(
    db: Database,
    config: Config,
    link_ids: Sequence[str],
    items: Sequence[ContractWindow],
    tz: ZoneInfo,
) -> dict[str, tuple[str, ...]]:
    """The method section's lines on outage time attributed to the customer."""
    if not items:
        return {}
    first = min(item.result.window.start for item in items).astimezone(UTC)
    last = max(item.result.window.end for item in items).astimezone(UTC)
    found = await attributions(db, link_ids, first, last)
    if not found:
        return {}
    policies = {
        f"{item.contract.id}: {item.terms.customer_caused}, "
        f"{policy_words(item.terms.customer_caused)}"
        for item in items
    }
    return {
        "attributions": tuple(f"{a.link_id}: {describe(a, tz)}" for a in found),
        "customer_caused": tuple(sorted(policies)),
    }


@dataclass(frozen=True, slots=True)
class MonthEntry:
    """A month a customer's report can be had for, and how far its figures are final."""

    label: str
    name: str  # "November 2026"
    state: MonthState


async def report_months(
    db: Database, config: Config, customer: Customer, now: datetime, *, most: int = 13
) -> list[MonthEntry]:
    """The customer's months, newest first, from the one in which a contract of theirs
    was first both in force and measured (at most `most`): running while the month runs,
    complete once every window its report covers has a closed ledger row, provisional
    until then."""
    began = await monitoring_began(db, _customer_links(config, customer.id))
    first = _first_reported(config, customer.id, began) or now  # nothing yet: this month
    months: list[Window] = []
    month = window_containing("month", customer.tz, now)
    while len(months) < most and month.end.astimezone(UTC) > first:
        months.append(month)
        month = month.previous()
    plans = {m.label: report_plans(config, customer.id, m, now, began) for m in months}
    labels = sorted({plan.label for found in plans.values() for plan in found})
    statuses = await ledger_statuses(db, customer.id, labels)
    entries = []
    for month in months:
        if now < month.end.astimezone(UTC):
            state: MonthState = "running"
        else:
            wanted = [
                (p.contract.id, subject.id, plan.label)
                for plan in plans[month.label]
                for p in plan.todo
                for subject in subjects(p.contract)
            ]
            final = all(statuses.get(key) in FINAL_STATUSES for key in wanted)
            state = "complete" if final else "provisional"
        entries.append(MonthEntry(month.label, month.start.strftime("%B %Y"), state))
    return entries


def _first_reported(
    config: Config, customer_id: str, began: Mapping[str, datetime]
) -> datetime | None:
    """When the first of the customer's contracts had both begun and been measured: a
    month before it has nothing to report (links monitored before their contract starts
    measure no contract)."""
    found = []
    for contract in config.contracts:
        if contract.customer != customer_id:
            continue
        first = first_data(contract, began)
        if first is None:
            continue
        if contract.effective_from is not None:
            first = max(first, contract.effective_from)
        found.append(first)
    return min(found, default=None)


def weeks_overlapping(month: Window) -> list[Window]:
    """The ISO weeks, in the month's zone, that share time with the month."""
    assert isinstance(month.start.tzinfo, ZoneInfo)
    week = window_containing("week", month.start.tzinfo, month.start)
    weeks = []
    while week.start < month.end:
        weeks.append(week)
        week = week.next()
    return weeks


def _contract_view(
    config: Config,
    items: Sequence[ContractWindow],
    tz: ZoneInfo,
    month: Window,
    now: datetime,
    found: Sequence[Incident],
    statuses: Mapping[tuple[str, str, str], str],
    vantage: Mapping[str, Vantage],
) -> ContractView:
    contract = items[0].contract
    terms = items[0].terms
    weekly = terms.window == "week"
    measurements = tuple(
        _measurement(config, item, tz, month, now, found, statuses, vantage) for item in items
    )
    totals: dict[str, Decimal] = {}
    for item in items:
        credit = item.result.credit
        totals[credit.currency] = totals.get(credit.currency, Decimal(0)) + credit.amount
    note = ""
    if terms.window in ("quarter", "year"):
        window = items[0].result.window
        note = (
            f"This contract is measured per calendar {terms.window} in the customer's time "
            f"zone; {window.label} runs from {_moment(window.start, tz)} to "
            f"{_moment(window.end, tz)}. It is shown whole, with its own credit, in the report "
            f"of the month it ends in"
        )
        note += "." if window.end == month.end else "; while it runs, its figures so far."
    elif weekly:
        note = (
            "This contract is measured per ISO week (Monday 00:00 to Monday 00:00 local "
            "time). Every week that overlaps the month is shown whole, and each week earns "
            "its own credit; a week that spans two months appears in both months' "
            "reports but is credited once."
        )
    if any(i.terms != terms for i in items):
        note += (
            " The contract's terms changed during this period: each window uses the "
            "version in force at its start, as its calculation shows."
        )
    schedule = schedule_of(terms, tz)
    hours_rows = () if schedule is None else (_hours_row(schedule),)
    return ContractView(
        id=contract.id,
        kind=_KIND_WORDS[terms.window],
        terms=_terms_rows(contract, terms) + hours_rows,
        measurements=measurements,
        credit_total=", ".join(_money(a, c) for c, a in totals.items()),
        note=note.strip(),
    )


_KIND_WORDS = {"week": "weekly", "month": "monthly", "quarter": "quarterly", "year": "yearly"}


def _hours_row(schedule: str) -> Row:
    return Row(
        "Covered hours",
        f"{schedule}: only these hours are measured; the rest of each window is excluded "
        "like announced maintenance",
    )


def _customer_caused_row(item: ContractWindow) -> Row:
    """Outage time attributed to the customer: where it went in the figures."""
    policy = item.terms.customer_caused
    if policy == "exclude":
        how = (
            "outage time attributed to the customer (see the method), beyond excluded "
            "maintenance: customer_caused exclude, so it is part of the excluded time above"
        )
    else:
        how = (
            "outage time attributed to the customer (see the method): customer_caused "
            "count, so it counts as down time like any outage"
        )
    return Row("Attributed to the customer", _s(item.result.customer_caused_us), how)


def _terms_rows(contract: Contract, terms: ResolvedTerms) -> tuple[Row, ...]:
    credit = terms.credit
    rows = [
        Row("Availability target", _target(terms)),
        Row(
            "Availability shown",
            f"to {count_of(terms.availability_decimals, 'decimal place')}, truncated "
            "(never rounded up)",
        ),
        Row(
            "Window",
            "ISO week, in the customer's time zone"
            if terms.window == "week"
            else f"calendar {terms.window}, in the customer's time zone",
        ),
        Row("Fee per window", _money(terms.fee, terms.currency)),
        Row("Unknown time", f"{terms.unknown}: {UNKNOWN_POLICY[terms.unknown]}"),
        Row(
            "Maintenance notice",
            f"{duration_text(terms.maintenance_notice, exact=True)}: planned work announced at"
            " least this long before it starts is excluded",
        ),
    ]
    if credit.per_step > 0:
        how = "each started" if credit.rounding == "ceil" else "each full"
        rows.append(
            Row(
                "Credit per step",
                f"{credit.per_step} % for {how} {credit.step} percentage points below target",
            )
        )
    for band in credit.bands:
        rows.append(Row("Credit band", f"availability below {band.below} %: {band.credit} %"))
    if credit.incidents is not None:
        rule = credit.incidents
        rows.append(
            Row(
                "Incident credit",
                f"{rule.credit} % for {rule.count} or more outages of at least "
                f"{duration_text(rule.min_duration, exact=True)} each in a window",
            )
        )
    latency = terms.latency
    if latency is not None:
        limits = [f"p95 at most {latency.p95_ms} ms"] if latency.p95_ms is not None else []
        limits += [f"mean at most {latency.mean_ms} ms"] if latency.mean_ms is not None else []
        rows.append(
            Row(
                "Latency objective",
                f"{' and '.join(limits)} over the available time; {latency.credit} % if missed",
            )
        )
    if terms.loss is not None:
        rows.append(
            Row(
                "Loss objective",
                f"mean at most {terms.loss.max_pct} % over the available time; "
                f"{terms.loss.credit} % if missed",
            )
        )
    if terms.restore is not None:
        rows.append(Row("Time to restore", restore_rule_text(_restore_rule(terms))))
    rows += quality_terms_rows(terms)
    rows.append(Row("Credit cap", f"{credit.cap} % of the fee"))
    if terms.budget_warnings:
        rows.append(
            Row(
                "Budget warnings",
                "at " + ", ".join(f"{w} %" for w in sorted(terms.budget_warnings)) + " used",
            )
        )
    if terms.minimum_credit > 0:
        rows.append(
            Row(
                "Minimum credit",
                f"{_money(terms.minimum_credit, terms.currency)}: smaller amounts are not paid",
            )
        )
    if contract.group == "redundant":
        rows.append(
            Row(
                "Redundancy",
                f"links {', '.join(contract.links)} form one service: down only while all are down",
            )
        )
    return tuple(rows)


def _measurement(
    config: Config,
    item: ContractWindow,
    tz: ZoneInfo,
    month: Window,
    now: datetime,
    found: Sequence[Incident],
    statuses: Mapping[tuple[str, str, str], str],
    vantage_of: Mapping[str, Vantage],
) -> Measurement:
    r = item.result
    terms = item.terms
    window = r.window
    subject_note = ""
    if item.subject.id.startswith("group:"):
        subject = "Redundant group " + " + ".join(item.subject.link_ids)
    else:
        subject = item.subject.id
        link = next((lk for lk in config.links if lk.id == item.subject.id), None)
        if link is not None and link.description:
            subject_note = link.description
    ledger_status = statuses.get((item.contract.id, item.subject.id, window.label))
    status = "final" if ledger_status in FINAL_STATUSES else "provisional"
    verdict = "n/a" if r.met is None else ("met" if r.met else "missed")
    availability = _availability(r.availability, terms)
    # The subject's links measured from several sites, with their vantage.
    vantage = {i: vantage_of[i] for i in item.subject.link_ids if i in vantage_of}
    return Measurement(
        anchor=f"{item.contract.id}-{item.subject.id}-{window.label}".replace(":", "-"),
        subject=subject,
        subject_note=subject_note,
        window_kind=window.kind,
        window_label=window.label,
        window_span=f"{_moment(window.start, tz)} to {_moment(window.end, tz)}",
        outside_month=window.start < month.start or window.end > month.end,
        status=status,
        verdict=verdict,
        availability=availability,
        target=_target(terms),
        credit_pct=share_text(r.credit.total_pct, space=" "),
        credit_amount=_money(r.credit.amount, r.credit.currency),
        currency=r.credit.currency,
        rows=_rows(item, tz, now, vantage),
        budget_rows=_budget_rows(item),
        credit_rows=_credit_rows(item),
        outages=_outages(item, tz, found, vantage, config.site.id),
        maintenance=_maintenance(r.maintenance, tz),
        objectives=_objectives(r) + metric_objective_views(r),
        review=review_reason(r),
    )


def _rows(
    item: ContractWindow, tz: ZoneInfo, now: datetime, vantage: Mapping[str, Vantage]
) -> tuple[Row, ...]:
    r, terms = item.result, item.terms
    window_s = _s(r.window_us)
    rows = [
        Row(
            "Window length",
            window_s,
            f"real elapsed time from start to end ({duration_text(r.window_us, exact=True)})",
        )
    ]
    for link_id, seen_from in sorted(vantage.items()):
        sites = seen_from.sites
        rows.append(
            Row(
                "Measured from",
                f"{len(sites)} sites" + (f" ({link_id})" if len(vantage) > 1 else ""),
                f"{', '.join(sites)}; an outage counts only while at least "
                f"{seen_from.quorum} of them see the link down, each site's failures "
                "confirmed on its own; a site that cannot see (its canaries fail, or it "
                f"sends nothing) does not count, and while fewer than {seen_from.quorum} "
                "sites measure it the time is unknown",
            )
        )
    base = r.window_us
    if r.measured_us < r.window_us:
        base = r.measured_us
        rows.append(
            Row(
                "Measured so far",
                _s(r.measured_us),
                f"the window runs until {_moment(r.window.end, tz)}; figures cover it up to "
                f"{_moment(r.measured_until, tz)} and will change",
            )
        )
    measured = "measured time" if r.measured_us < r.window_us else "window"
    excluded_count = sum(1 for d in _unique(r.maintenance) if d.excluded)
    rows.append(
        Row(
            "Excluded maintenance",
            _s(r.excluded_us),
            f"{excluded_count} announced window{'s' if excluded_count != 1 else ''} "
            "with enough notice, within the "
            f"{measured} (see Maintenance); an overrun past the announced end counts normally"
            if r.maintenance
            else "no maintenance was planned for this link in this window",
        )
    )
    schedule = schedule_of(terms, tz)
    if schedule is not None:
        # Excluded time is maintenance or outside the schedule: each on its own line.
        maintenance_us = r.excluded_us - r.outside_hours_us
        if item.terms.customer_caused == "exclude":
            maintenance_us -= r.customer_caused_us
        rows[-1] = Row(rows[-1].label, _s(maintenance_us), rows[-1].method)
        rows.append(
            Row(
                "Outside covered hours",
                _s(r.outside_hours_us),
                f"the contract measures only its covered hours ({schedule}); the rest of the "
                f"{measured} is excluded like announced maintenance, ahead of down and "
                "unknown time",
            )
        )
    if r.customer_caused_us:
        rows.append(_customer_caused_row(item))
    rows.append(
        Row(
            "Unknown time",
            _s(r.unknown_us),
            "time with no measurement (monitor gaps, no data yet), outside excluded "
            f"maintenance; contract policy {terms.unknown}: {UNKNOWN_POLICY[terms.unknown]}",
        )
    )
    rows.append(
        Row(
            "Coverage",
            _pct(r.coverage),
            f"known time ÷ {measured} = ({_n(base)} − {_n(r.unknown_us)}) ÷ {_n(base)}",
        )
    )
    down_method = (
        f"confirmed outages outside excluded maintenance ({r.incidents} listed below)"
        if r.outages
        else "no confirmed outage outside excluded maintenance"
    )
    if terms.unknown == "count_as_down" and r.unknown_us:
        down_method += f", plus the {_n(r.unknown_us)} s of unknown time"
    if terms.availability is not None:
        down_method += f", plus the {_n(r.quality_down_us)} s unavailable for quality"
    rows.append(Row("Down time", _s(r.down_us), down_method))
    if terms.availability is not None:
        rows.append(quality_row(terms, r.quality_down_us))
    if terms.unknown == "exclude":
        eligible_method = (
            f"{measured} − excluded − unknown = {_n(base)} − {_n(r.excluded_us)} − "
            f"{_n(r.unknown_us)}"
        )
    else:
        eligible_method = (
            f"{measured} − excluded = {_n(base)} − {_n(r.excluded_us)} (unknown time stays in, "
            f"{UNKNOWN_POLICY[terms.unknown]})"
        )
    if schedule is not None:
        eligible_method += (
            f"; excluded = maintenance + outside covered hours = {_n(maintenance_us)} + "
            f"{_n(r.outside_hours_us)}"
        )
    rows.append(Row("Eligible time", _s(r.eligible_us), eligible_method))
    if r.availability is None:
        rows.append(
            Row(
                "Availability",
                "n/a",
                "nothing is eligible, so there is no availability and no credit",
                strong=True,
            )
        )
    else:
        rows.append(
            Row(
                "Availability",
                _availability(r.availability, terms),
                f"(eligible − down) ÷ eligible = ({_n(r.eligible_us)} − {_n(r.down_us)}) ÷ "
                f"{_n(r.eligible_us)} = {_exact_pct(r.availability)} %, truncated to "
                f"{count_of(terms.availability_decimals, 'decimal place')} (never rounded up)",
                strong=True,
            )
        )
    verdict = (
        "not applicable"
        if r.met is None
        else (
            "met: availability is at or above the target"
            if r.met
            else "missed: availability is below the target"
        )
    )
    rows.append(Row("Target", _target(terms), verdict, strong=True))
    return tuple(rows)


def _budget_rows(item: ContractWindow) -> tuple[Row, ...]:
    r, terms = item.result, item.terms
    allowed = 1 - r.target
    rows: list[Row] = []
    if allowed > 0:
        budgeted = r.budget_us / allowed
        basis = "window − excluded maintenance"
        if terms.unknown == "exclude":
            basis += " − unknown time so far"
        rows.append(
            Row(
                "Allowed down time",
                _s(r.budget_us),
                f"(100 % − {terms.target} %) × {_n(budgeted)} s ({basis})",
            )
        )
    else:
        rows.append(Row("Allowed down time", "0 s", "a 100 % target allows no down time"))
    if r.budget_used is None:
        rows.append(Row("Budget used", "n/a", "there is no budget to use"))
    else:
        rows.append(
            Row(
                "Budget used",
                _pct(r.budget_used),
                f"down ÷ allowed = {_n(r.down_us)} ÷ {_n(r.budget_us)}"
                + (" (over budget)" if r.budget_used > 1 else ""),
            )
        )
    remaining = r.budget_remaining_us
    rows.append(
        Row(
            "Budget remaining",
            _s(remaining) if remaining >= 0 else f"−{_s(-remaining)}",
            f"allowed − down = {_n(r.budget_us)} − {_n(r.down_us)}"
            + (" (negative: the budget is exceeded)" if remaining < 0 else ""),
        )
    )
    burn = r.burn_rate
    if burn is not None:
        rows.append(
            Row(
                "Burn rate",
                _plain(burn, places=2),
                "budget used ÷ share of the window measured; 1 uses the budget up exactly at "
                "the window's end, 2 at its middle",
            )
        )
    if r.warnings:
        rows.append(
            Row(
                "Warnings reached",
                ", ".join(f"{w} %" for w in r.warnings),
                "the warning levels of the budget that this window's down time reached",
            )
        )
    return tuple(rows)


def _credit_rows(item: ContractWindow) -> tuple[Row, ...]:
    r, terms = item.result, item.terms
    credit, rules = r.credit, terms.credit
    fee = _money(terms.fee, terms.currency)
    if r.availability is None:
        return (Row("Credit", f"0 % = {credit.amount} {credit.currency}", "no eligible time"),)
    rows: list[Row] = []
    shortfall = Fraction(terms.target) - r.availability * 100
    if shortfall > 0:
        rows.append(
            Row(
                "Shortfall",
                f"{_points(shortfall)} {'point' if shortfall == 1 else 'points'}",
                f"target − availability = {terms.target} − {_exact_pct(r.availability)}",
            )
        )
    else:
        rows.append(Row("Shortfall", "0 points", "the target was met"))
    if rules.per_step > 0:
        if shortfall > 0:
            per = shortfall / Fraction(rules.step)
            how = "rounded up" if rules.rounding == "ceil" else "whole steps only"
            rows.append(
                Row(
                    "Steps",
                    f"{credit.steps} × {rules.per_step} % = {credit.steps_pct} %",
                    f"{_points(shortfall)} ÷ {rules.step} = {_points(per)}, {how}",
                )
            )
        else:
            rows.append(Row("Steps", f"0 × {rules.per_step} % = 0 %", "no shortfall"))
    for band in rules.bands:
        applies = r.availability * 100 < Fraction(band.below)
        rows.append(
            Row(
                f"Band below {band.below} %",
                f"{band.credit} %" if applies else "0 %",
                f"availability is {'below' if applies else 'not below'} {band.below} %"
                + ("" if applies or not credit.band_pct else " (only the highest band counts)"),
            )
        )
    if len(rules.bands) > 1:
        rows.append(Row("Band credit", f"{credit.band_pct} %", "the highest band that applies"))
    if rules.incidents is not None:
        rule = rules.incidents
        least = rule.min_duration
        qualifying = sum(1 for start, end in r.outages if end - start >= least)
        rows.append(
            Row(
                "Incident credit",
                f"{credit.incident_pct} %",
                f"{qualifying} outage{'s' if qualifying != 1 else ''} of at least "
                f"{duration_text(least, exact=True)}; {rule.count} or more earn {rule.credit} %",
            )
        )
    parts = [f"{credit.steps_pct} %"] if rules.per_step > 0 else []
    if rules.bands:
        parts.append(f"{credit.band_pct} %")
    if rules.incidents is not None:
        parts.append(f"{credit.incident_pct} %")
    if r.objectives or r.metric_objectives:
        rows.append(
            Row(
                "Objectives credit",
                f"{credit.objective_pct} %",
                "credit of the performance objectives missed (see below)",
            )
        )
        parts.append(f"{credit.objective_pct} %")
    if terms.restore is not None:
        rows += _restore_rows(item)
        parts.append(f"{credit.restore_pct} %")
    summed = " + ".join(parts) or "0 %"
    rows.append(
        Row(
            "Credit",
            f"{credit.total_pct} %",
            f"the lesser of the cap {rules.cap} % and {summed}",
            strong=True,
        )
    )
    raw = quantise(terms.fee * credit.total_pct / 100, terms.currency)
    method = f"fee {fee} × {credit.total_pct} %, rounded half up to the minor unit"
    if raw != credit.amount:
        method += (
            f": {raw} is below the minimum credit of "
            f"{_money(terms.minimum_credit, terms.currency)}, so nothing is paid"
        )
    review = r.review
    if review is not None and review.withheld is not None:
        withheld = review.withheld
        rows[-1] = Row(
            "Credit",
            "0 %",
            f"coverage {_pct(r.coverage)} is under the contract's minimum of "
            f"{review.limit_pct.normalize():f} %: no credit is computed automatically; the "
            f"rules above would give {share_text(withheld.total_pct, space=' ')} "
            f"({_money(withheld.amount, withheld.currency)}), which a person reviews",
            strong=True,
        )
        method = "nothing is credited automatically under the contract's minimum coverage"
    rows.append(Row("Credit amount", _money(credit.amount, credit.currency), method, strong=True))
    return tuple(rows)


def _restore_rows(item: ContractWindow) -> list[Row]:
    """Per outage over the restore limit (and per outage still running at the window's
    end), then the window's restore credit."""
    rule = _restore_rule(item.terms)
    zone = item.result.window.start.tzinfo
    assert zone is not None
    rows = [
        Row("Restored late", f"{restore.pct} %", restore_text(restore, rule, zone))
        for restore in item.result.restores
        if restore.over
    ]
    rows += [
        Row("Still running", "0 %", continuing_text(outage, zone))
        for outage in item.result.continuing
    ]
    billed = item.result.restores
    summed = " + ".join(f"{r.pct} %" for r in billed if r.over) or "0 %"
    rows.append(
        Row(
            "Restore credit",
            f"{item.result.credit.restore_pct} %",
            f"the lesser of the restore cap {rule.cap_pct} % and {summed}; "
            f"{len(billed)} outage{'s' if len(billed) != 1 else ''} ended in this window",
        )
    )
    return rows


def _restore_rule(terms: ResolvedTerms) -> RestoreRule:
    rule = restore_rule(terms)
    assert rule is not None
    return rule


def _outages(
    item: ContractWindow,
    tz: ZoneInfo,
    found: Sequence[Incident],
    vantage: Mapping[str, Vantage],
    home: str,
) -> tuple[OutageView, ...]:
    links = set(item.subject.link_ids)
    excluded = _qualifying(item)
    views = []
    for number, (start, end) in enumerate(item.result.outages, start=1):
        seen = [
            i
            for i in found
            if i.link_id in links
            and i.starts_at < end
            and (i.seen_until is None or i.seen_until > start)
        ]
        views.append(
            OutageView(
                number=number,
                starts_at=_moment(start, tz),
                ends_at=_moment(end, tz),
                duration=duration_text(end - start, exact=True),
                duration_s=_s(_us(end - start)),
                detail=_outage_detail(start, end, seen, tz, vantage, home, excluded),
            )
        )
    return tuple(views)


def _qualifying(item: ContractWindow) -> tuple[list[Exclusion], SpanSet]:
    """The window's qualifying maintenance, and the time it excludes for the subject: a
    redundant group's only while every member is in such work, as the engine counts."""
    every = exclusions(item.result.maintenance)
    customer = item.contract.customer
    each = [
        SpanSet.of(
            (to_us(e.start), to_us(e.end)) for e in every if concerns(e.window, link, customer)
        )
        for link in item.subject.link_ids
    ]
    return every, functools.reduce(operator.and_, each)


def _excluded_of(
    incident: Incident, excluded: tuple[Sequence[Exclusion], SpanSet], tz: ZoneInfo
) -> str:
    """How much of a stored outage the window's qualifying maintenance took out, and
    which: "; 35 min of it was excluded: planned maintenance “Core upgrade” (...)"."""
    end = incident.ends_at or incident.seen_until
    if end is None:
        return ""
    outage = SpanSet.between(incident.starts_at, end)
    windows, spans = excluded
    taken = spans & outage
    # A redundant group's members decide the same window each: name it once.
    inside = list(
        {e.window.id: e for e in windows if SpanSet.between(e.start, e.end) & taken}.values()
    )
    if not taken:
        return ""
    works = " and ".join(
        f"“{e.window.description or e.window.id}” ({_moment(e.start, tz)} to {_moment(e.end, tz)})"
        for e in inside
    )
    return (
        f"; {duration_text(taken.length_us, exact=True)} of it was excluded: planned "
        f"maintenance {works}"
    )


def _sites_saw(incident: Incident, vantage: Vantage, home: str, tz: ZoneInfo) -> str:
    """Which sites saw each probe down, and which did not: "ping seen down by fra (from
    10:20:00) and ams (from 10:21:00: no reply); local did not see it down"."""
    texts = []
    for seen in incident.witnesses(vantage.sites, home):
        down = [
            f"{site} (from {_clock(p.starts_at, tz)}" + (f": {p.error})" if p.error else ")")
            for site, p in seen.down
        ]
        text = f"{seen.probe} seen down by {_and(down)}"
        if seen.not_down:
            text += f"; {_and(seen.not_down)} did not see it down"
        texts.append(text)
    return "; ".join(texts)


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _outage_detail(
    start: datetime,
    end: datetime,
    seen: Sequence[Incident],
    tz: ZoneInfo,
    vantage: Mapping[str, Vantage],
    home: str,
    excluded: tuple[Sequence[Exclusion], SpanSet] = ((), SpanSet()),
) -> str:
    if not seen:
        return "no measurement: unknown time counted as down under the contract's policy"
    parts = []
    for incident in seen:
        if incident.link_id in vantage:
            probes = _sites_saw(incident, vantage[incident.link_id], home, tz)
        else:
            probes = "; ".join(
                f"{p.probe_id} from {_clock(p.starts_at, tz)}" + (f": {p.error}" if p.error else "")
                for p in incident.probes
            )
        text = f"{incident.link_id}: {probes}" if probes else incident.link_id
        if incident.starts_at < start or incident.ends_at is None or incident.ends_at > end:
            until = "still running" if incident.ends_at is None else _moment(incident.ends_at, tz)
            text += (
                f"; the outage ran from {_moment(incident.starts_at, tz)} to {until}, only "
                "the part in this window and outside excluded maintenance counts here"
            )
            text += _excluded_of(incident, excluded, tz)
        parts.append(text)
    return " · ".join(parts)


def _maintenance(
    decisions: Iterable[MaintenanceDecision], tz: ZoneInfo
) -> tuple[MonthlyMaintenance, ...]:
    return tuple(
        MonthlyMaintenance(
            id=d.window.id,
            description=d.window.description,
            starts_at=_moment(d.window.starts_at, tz),
            ends_at=_moment(d.window.ends_at, tz),
            announced_at=_moment(d.window.announced_at, tz),
            excluded=d.excluded,
            reason=d.reason,
            cancelled_at=None
            if d.window.cancelled_at is None
            else _moment(d.window.cancelled_at, tz),
        )
        for d in _unique(decisions)
    )


def _unique(decisions: Iterable[MaintenanceDecision]) -> list[MaintenanceDecision]:
    # A redundant group lists each window once per member; a person needs it once.
    seen: dict[str, MaintenanceDecision] = {}
    for decision in decisions:
        seen.setdefault(decision.window.id, decision)
    return list(seen.values())


def _objectives(result: WindowResult) -> tuple[ObjectiveView, ...]:
    views = []
    for outcome in result.objectives:
        unit = f" {outcome.objective.unit}"
        views.append(
            ObjectiveView(
                name=outcome.objective.name,
                limit=_plain(outcome.objective.limit, unit),
                measured=_plain(outcome.measured, unit, places=3),
                met="not measured" if outcome.met is None else ("met" if outcome.met else "missed"),
                credit=_plain(outcome.credit_pct, " %"),
            )
        )
    return tuple(views)


def metric_objective_views(result: WindowResult) -> tuple[ObjectiveView, ...]:
    """The objectives on any stored metric, after the latency and loss ones."""
    views = []
    for metric in result.metric_objectives:
        unit = f" {metric.objective.unit}" if metric.objective.unit else ""
        views.append(
            ObjectiveView(
                name=f"{metric.objective.name} ({metric.samples:,} samples)",
                limit=_plain(metric.objective.limit, unit),
                measured=_plain(metric.measured, unit),
                met="not measured" if metric.met is None else ("met" if metric.met else "missed"),
                credit=_plain(metric.credit_pct, " %"),
            )
        )
    return tuple(views)


def quality_terms_rows(terms: ResolvedTerms) -> list[Row]:
    """The contract's quality rule and metric objectives, as its terms state them."""
    rows = []
    if terms.availability is not None:
        limits = terms.availability.unavailable_when
        over = [f"mean loss over {limits.loss_pct_over} %"] if limits.loss_pct_over else []
        over += [f"mean RTT over {limits.rtt_ms_over} ms"] if limits.rtt_ms_over else []
        rows.append(
            Row(
                "Quality",
                f"each {duration_text(limits.over, exact=True)} from the window's start with "
                f"{' or '.join(over)} is unavailable",
            )
        )
    for o in terms.objectives:
        what = (
            f"at most {o.limit} % of samples over {o.above}"
            if o.aggregate == "share_above"
            else f"{o.aggregate} at most {o.limit}"
        )
        on = f" (probe {o.probe})" if o.probe else ""
        rows.append(
            Row(
                "Objective",
                f"{o.metric}{on}: {what} over the available samples; {o.credit} % if missed",
            )
        )
    return rows


def quality_row(terms: ResolvedTerms, quality_down_us: int) -> Row:
    assert terms.availability is not None
    limits = terms.availability.unavailable_when
    return Row(
        "Unavailable for quality",
        _s(quality_down_us),
        f"available time in slots of {duration_text(limits.over, exact=True)} whose mean "
        "loss or RTT was over the contract's limit; counted as down time (included above) "
        "but not as an outage",
    )


# --- formatting ----------------------------------------------------------------------------


def _moment(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def _clock(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%H:%M:%S")


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def _n(micros: int | Fraction) -> str:
    """Microseconds as seconds with thousands separators, for a formula."""
    value = seconds(micros)
    return f"{value.normalize() if value % 1 else value:,}"


def _s(micros: int | Fraction) -> str:
    return f"{_n(micros)} s"


def _pct(ratio: Fraction | None) -> str:
    """A share that is not an availability (coverage, budget used) as every page, e-mail
    and report reads it: truncated to two decimals."""
    return share_text(None if ratio is None else ratio * 100, space=" ")


def _availability(ratio: Fraction | None, terms: ResolvedTerms) -> str:
    """The measured availability as every page, e-mail and report reads it: truncated to
    the contract's decimals."""
    return ratio_availability_text(ratio, terms.availability_decimals, space=" ")


def _target(terms: ResolvedTerms) -> str:
    return target_text(terms.target, space=" ")


def _money(amount: Decimal, currency: str) -> str:
    return money(amount, currency, space=" ")


def _exact_pct(ratio: Fraction) -> str:
    """A percentage with 6 decimals, truncated, and '…' when there are more."""
    return _points(ratio * 100)


def _points(value: Fraction) -> str:
    shown = truncate_pct(value / 100, 6)
    assert shown is not None
    text = f"{shown.normalize():f}" if shown != shown.to_integral_value() else f"{int(shown)}"
    return text if Fraction(shown) == value else text + "…"


def _plain(value: Any, unit: str = "", *, places: int = 4) -> str:
    """A figure of a field whose type may change: exact where it can be, truncated (never
    rounded up) to `places` decimals, with '…' where digits were cut."""
    if value is None:
        return "n/a"
    if isinstance(value, timedelta):
        return duration_text(value, exact=True)
    if isinstance(value, float):
        value = Decimal(str(value))
    if isinstance(value, Decimal | Fraction | int):
        exact = Fraction(value)
        shown = Decimal(math.floor(exact * 10**places)).scaleb(-places)
        if Fraction(shown) == exact:
            text = f"{shown.normalize():f}" if shown % 1 else f"{int(shown)}"
        else:
            text = f"{shown:f}…"
        return f"{text}{unit}"
    return f"{value}{unit}"
