"""The operations dashboard: what is down now and what it will cost, how contracts stand
this week and month, and every link worst first, refreshed in place.

Figures come from three shared, cached reads whatever the number of links or viewers:
the link board (current states), the SLA windows of the contracts of links that are
down now (live budgets for the countdowns), and the ledger's slim window rows (budget
warnings and met/missed counts, as the daemon last computed them). This module must
never read per link or per contract, show more budget time left than there is, or
serve a viewer without the "noc" capability (they get the same 404 as a page that does
not exist).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup

from kernel.config import Config, Contract
from kernel.domain import LinkStatus
from portal.auth import Viewer
from portal.board import (
    STATUS_ORDER,
    Board,
    BoardQuery,
    LinkRow,
    board_page,
    board_query,
    full_board,
)
from portal.compliance_views import compliance_of, staff_tables
from portal.formatting import Moment, duration_text, local_time, moment, share_text, target_text
from portal.keys import CACHE, CLOCK, LIVE, NOTICES, READS, SETTINGS
from portal.ledger_views import Standing, StandingText, Verdict
from portal.pages.acknowledgements import with_acknowledgements
from portal.pages.common import positive_int, require
from portal.params import choice
from portal.rendering import render, render_fragment
from portal.restore_views import RestoreClock, restore_clock
from portal.scope import can
from sla.report import ContractWindow
from sla.spans import US_PER_S
from sla.windows import WindowKind, window_containing

routes = web.RouteTableDef()

UTC_ZONE = ZoneInfo("UTC")

# Links whose states cannot be derived, each named in a notice; beyond this, a count.
STATE_FAILURES_SHOWN = 5

# A countdown turns red this close to the breach (and stays red once it is breached),
# amber within the hour: enough time to escalate before the contract is missed.
CRITICAL_LEFT = timedelta(minutes=15)
WARNING_LEFT = timedelta(hours=1)
OUTAGES_SHOWN = 100
WATCH_SHOWN = 50
ATTENTION_SHOWN = 30
COMPLIANCE_SHOWN = 500

Level = Literal["critical", "warning", "ok", "idle"]
Period = Literal["this-week", "last-week", "this-month", "last-month"]
PERIODS: dict[Period, tuple[str, WindowKind, bool]] = {
    # name -> (heading, window kind, the previous window)
    "this-week": ("This week", "week", False),
    "this-month": ("This month", "month", False),
    "last-week": ("Last week", "week", True),
    "last-month": ("Last month", "month", True),
}
OUTCOMES: dict[Verdict, str] = {
    "missed": "Missed",
    "at_risk": "At risk",
    "on_track": "On track",
    "met": "Met",
    "no_data": "No data",
}


# --- view models ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Countdown:
    """One contract's error budget against a running outage."""

    contract_id: str
    subject_id: str
    window_label: str
    level: Level
    headline: str  # "budget runs out in 42 min", "breached 12 min ago"
    detail: str  # target, budget left of budget, when it runs out
    used: str | None  # the <meter> value, 0 to 1; every figure shown is exact text
    left_s: int | None  # None when the outage does not use this budget


@dataclass(frozen=True, slots=True)
class Outage:
    """A link using error budget now. Every figure on its card counts from the same
    start (the board row's) to the same moment, with the same rule for durations."""

    row: LinkRow
    started: Moment | None
    duration: str  # running, since the outage started
    countdowns: tuple[Countdown, ...]
    restores: tuple[RestoreClock, ...] = ()  # deadlines of contracts with a restore term
    ack_key: str | None = None  # the outage's start in its acknowledgement form's path
    acknowledged: str | None = None  # "acknowledged by olga 3 min after it began: ..."

    @property
    def level(self) -> Level:
        return worst([*(c.level for c in self.countdowns), *(r.level for r in self.restores)])


@dataclass(frozen=True, slots=True)
class Watched:
    """A running window whose budget has reached one of its contract's warning levels."""

    standing: Standing
    customer_name: str
    link_status: LinkStatus | None  # None for a redundant group
    level: Level
    used: str
    used_ratio: str | None  # the <meter> value
    computed: Moment | None


@dataclass(frozen=True, slots=True)
class PeriodCount:
    period: Period
    heading: str
    labels: tuple[str, ...]
    counts: tuple[tuple[Verdict, int], ...]  # outcomes present, worst first
    total: int
    as_of: Moment | None  # when the ledger last computed these rows
    running: bool


@dataclass(frozen=True, slots=True)
class LedgerView:
    """What the dashboard reads from the ledger, shared by every viewer for the ttl."""

    counts: tuple[PeriodCount, ...]
    watched: tuple[Standing, ...]  # the worst WATCH_SHOWN, most budget used first
    watched_total: int


# --- the countdown -------------------------------------------------------------------


def worst(levels: Iterable[Level]) -> Level:
    order: tuple[Level, ...] = ("critical", "warning", "ok", "idle")
    found = set(levels)
    return next((level for level in order if level in found), "idle")


def _seconds(us: Fraction) -> int:
    """Whole seconds, towards the breach: time left is never shown longer than it is."""
    return math.floor(us / US_PER_S)


def meter(ratio: Fraction | Decimal | None) -> str | None:
    """A ratio as the text of a <meter> value (0 to 1, capped): display only."""
    if ratio is None:
        return None
    clamped = min(max(Fraction(ratio), Fraction(0)), Fraction(1))
    return f"{Decimal(math.floor(clamped * 1000)).scaleb(-3):f}"


def countdown(
    item: ContractWindow,
    burning: bool,
    outage_since: datetime | None,
    now: datetime,
    *,
    idle: str = "no budget used: another link of the group is up",
) -> Countdown:
    """Time left in `item`'s error budget if the outage goes on: every second down uses a
    second of budget, counted from when the figures were computed (at most a ttl ago).
    `idle` says why the budget is not burning, when it is not."""
    result = item.result
    window = result.window
    left_us = result.budget_remaining_us
    if burning:
        left_us -= Fraction((now - result.measured_until) // timedelta(microseconds=1))
    left_s = _seconds(left_us)
    used = None if result.budget_us <= 0 else 1 - left_us / result.budget_us
    target = target_text(item.terms.target)
    budget = duration_text(timedelta(seconds=_seconds(result.budget_us)), smallest="min")
    base = f"{window.label} · target {target} · budget {budget}"

    def mark(level: Level, headline: str, detail: str) -> Countdown:
        return Countdown(
            contract_id=item.contract.id,
            subject_id=item.subject.id,
            window_label=window.label,
            level=level,
            headline=headline,
            detail=detail,
            used=meter(used),
            left_s=left_s if burning else None,
        )

    if left_s <= 0:
        over = timedelta(seconds=-left_s)
        down_for = now - outage_since if outage_since is not None else timedelta(0)
        if burning and down_for >= over:
            ago = (
                f"{duration_text(over, smallest='min')} ago"
                if over >= timedelta(minutes=1)
                else "just now"
            )
            return mark(
                "critical",
                f"breached {ago}",
                f"{base} · ran out at {local_time(now - over, UTC_ZONE)}",
            )
        return mark(
            "critical",
            "budget already exhausted",
            f"{base} · exceeded by {duration_text(over, smallest='min')}",
        )
    left = timedelta(seconds=left_s)
    remaining = f"{duration_text(left, smallest='min')} of {budget} left"
    if not burning:
        return mark("idle", idle, f"{base} · {remaining}")
    runs_out = now + left
    if runs_out >= window.end:
        ends = local_time(window.end, UTC_ZONE)
        return mark("ok", "budget lasts the window", f"{base} · {remaining} · window ends {ends}")
    level: Level = (
        "critical" if left < CRITICAL_LEFT else "warning" if left < WARNING_LEFT else "ok"
    )
    return mark(
        level,
        f"budget runs out in {duration_text(left, smallest='min')}",
        f"{base} · {remaining} · breach at {local_time(runs_out, UTC_ZONE)}",
    )


def burns(row: LinkRow, contract: Contract, config: Config, now: datetime) -> bool:
    """Whether the link's current state uses `contract`'s budget: down does, unknown only
    where the contract counts unknown time as down; planned work shows as maintenance."""
    if row.status is LinkStatus.DOWN:
        return True
    if row.status is not LinkStatus.UNKNOWN:
        return False
    terms = contract.terms_at(now, config.plans)
    return terms is not None and terms.unknown == "count_as_down"


async def outages(request: web.Request, board: Board, now: datetime) -> list[Outage]:
    """Links that use error budget now, worst first: soonest (or already) breached.

    Each card takes its status and start from the board row and counts all its
    durations to `now` (the moment the board was read), so that "4 min" never stands
    beside "down since 2 min ago" and none runs past the page's "Updated" time."""
    app = request.app
    config, directory = app[LIVE].config, app[LIVE].directory
    burning: dict[tuple[str, str], bool] = {}  # (link, contract) -> uses its budget
    candidates = [r for r in board.rows if r.status in (LinkStatus.DOWN, LinkStatus.UNKNOWN)]
    wanted: dict[str, Contract] = {}
    for row in candidates:
        for contract in directory.contracts_of_link(row.id):
            burning[row.id, contract.id] = burns(row, contract, config, now)
    down = [
        row
        for row in candidates
        if row.status is LinkStatus.DOWN
        or any(burning[row.id, c.id] for c in directory.contracts_of_link(row.id))
    ]
    for row in down:
        wanted.update((c.id, c) for c in directory.contracts_of_link(row.id))
    items: list[ContractWindow] = []
    by_kind: dict[WindowKind, list[Contract]] = {}
    for contract in wanted.values():
        terms = contract.terms_at(now, config.plans)
        if terms is not None:
            by_kind.setdefault(terms.window, []).append(contract)
    for kind, chosen in sorted(by_kind.items()):
        items += await app[READS].windows(chosen, kind, now, contractual_only=True)
    by_link: dict[str, list[ContractWindow]] = {}
    for item in items:
        for link_id in item.subject.link_ids:
            by_link.setdefault(link_id, []).append(item)
    found: list[Outage] = []
    for row in down:
        since = row.since_at
        marks = []
        clocks = []
        for item in by_link.get(row.id, ()):
            # A redundant group loses availability only while every member does.
            members = item.subject.link_ids
            uses = all(burning.get((member, item.contract.id), False) for member in members)
            idle = (
                "no budget used: another link of the group is up"
                if len(members) > 1
                else "no budget used: this contract leaves unknown time out"
            )
            marks.append(countdown(item, uses, since, now, idle=idle))
            clock = restore_clock(item, now, UTC_ZONE, running=uses)
            if clock is not None and row.status is LinkStatus.DOWN:
                clocks.append(clock)
        marks.sort(key=_urgency)
        found.append(
            Outage(
                row=row,
                started=moment(since, now, UTC_ZONE, exact=row.since_exact),
                duration=_running(since, now, exact=row.since_exact),
                countdowns=tuple(marks),
                restores=tuple(sorted(clocks, key=lambda c: c.left_s)),
            )
        )
    found = await with_acknowledgements(app, found)
    found.sort(key=lambda o: (-o.row.status.severity, _outage_urgency(o), o.row.id))
    return found


def _running(since: datetime | None, now: datetime, *, exact: bool) -> str:
    """How long the outage has run, by the same rule as its "since ... ago"."""
    if since is None:
        return "—"
    if since > now:
        return duration_text(timedelta(0), smallest="min")
    return f"{'' if exact else 'over '}{duration_text(now - since, smallest='min')}"


def _urgency(mark: Countdown) -> tuple[int, float]:
    order = {"critical": 0, "warning": 1, "ok": 2, "idle": 3}
    return order[mark.level], math.inf if mark.left_s is None else mark.left_s


def _outage_urgency(outage: Outage) -> tuple[int, float]:
    return min((_urgency(c) for c in outage.countdowns), default=(4, math.inf))


# --- the ledger's view ---------------------------------------------------------------


def period_labels(config: Config, now: datetime) -> dict[str, dict[Period, str]]:
    """customer id -> period -> the window label running (or the one before) in the
    customer's zone: contracts in other zones may be in another window already."""
    by_zone: dict[ZoneInfo, dict[Period, str]] = {}
    out: dict[str, dict[Period, str]] = {}
    for customer in config.customers:
        tz = customer.tz
        if tz not in by_zone:
            labels: dict[Period, str] = {}
            for period, (_, kind, previous) in PERIODS.items():
                window = window_containing(kind, tz, now)
                labels[period] = (window.previous() if previous else window).label
            by_zone[tz] = labels
        out[customer.id] = by_zone[tz]
    return out


def period_headings(config: Config, now: datetime) -> dict[Period, tuple[str, ...]]:
    """What each card counts, in words: the label of every contract's own window of the
    card's kind (running, or the one before), in the contract's zone. A customer whose
    contracts are all monthly adds no week; where contracts' zones are in different
    windows (Tokyo's week begins nine hours before Berlin's), each label names its zones.

    A pass over every contract (10,000 at an ISP): each zone's window is worked out once."""
    zone_of = {customer.id: customer.tz for customer in config.customers}
    label_of: dict[tuple[str, Period], str] = {}  # (zone, period) -> its window's label
    zones: dict[Period, dict[str, set[str]]] = {p: {} for p in PERIODS}
    for contract in config.contracts:
        terms = contract.terms_at(now, config.plans)
        if terms is None:
            continue
        tz = zone_of[contract.customer]
        for period, (_, kind, previous) in PERIODS.items():
            if terms.window != kind:
                continue
            label = label_of.get((tz.key, period))
            if label is None:
                window = window_containing(kind, tz, now)
                label = (window.previous() if previous else window).label
                label_of[tz.key, period] = label
            zones[period].setdefault(label, set()).add(tz.key)
    headings: dict[Period, tuple[str, ...]] = {}
    for period, by_label in zones.items():
        if len(by_label) <= 1:
            headings[period] = tuple(by_label)
        else:
            headings[period] = tuple(
                f"{label} ({', '.join(sorted(names))})" for label, names in sorted(by_label.items())
            )
    return headings


def period_of(standing: Standing, labels: Mapping[str, Mapping[Period, str]]) -> Period | None:
    for period, label in labels.get(standing.customer_id, {}).items():
        if label == standing.window_label:
            return period
    return None


async def ledger_view(request: web.Request, now: datetime) -> tuple[LedgerView, list[Standing]]:
    """The ledger's rows for this and last week and month, read once per ttl for all (at
    most one `notifications.evaluate_every` old, like the rows themselves)."""
    app = request.app
    config = app[LIVE].config
    labels = period_labels(config, now)
    wanted = tuple(sorted({label for zone in labels.values() for label in zone.values()}))
    rows = await app[READS].standings(wanted, now)
    # A pass over every contract and every row of four windows (40,000 at an ISP): in a
    # thread, so the pages served meanwhile do not wait for it.
    view = await asyncio.to_thread(tally, config, rows, labels, now)
    return view, rows


def tally(
    config: Config,
    rows: Iterable[Standing],
    labels: Mapping[str, Mapping[Period, str]],
    now: datetime,
) -> LedgerView:
    """Each period's outcomes counted, and the running windows at a warning level."""
    headings = period_headings(config, now)
    counted: dict[Period, dict[Verdict, int]] = {p: {} for p in PERIODS}
    as_of: dict[Period, datetime] = {}
    running: dict[Period, bool] = {}
    watched: list[Standing] = []
    for row in rows:
        period = period_of(row, labels)
        if period is None:
            continue
        outcome = row.outcome
        counted[period][outcome] = counted[period].get(outcome, 0) + 1
        as_of[period] = max(as_of.get(period, row.computed_at), row.computed_at)
        running[period] = running.get(period, False) or row.running
        if row.running and row.budget_warning_pct is not None:
            watched.append(row)
    # A zero budget (a 100 % target) is used up by any downtime: first.
    watched.sort(key=lambda s: (s.budget_used_pct is not None, -(s.budget_used_pct or 0)))
    counts = tuple(
        PeriodCount(
            period=period,
            heading=heading,
            labels=headings[period],
            counts=tuple((o, counted[period][o]) for o in OUTCOMES if counted[period].get(o)),
            total=sum(counted[period].values()),
            as_of=moment(as_of.get(period), now, UTC_ZONE),
            running=running.get(period, not previous),
        )
        for period, (heading, _, previous) in PERIODS.items()
    )
    return LedgerView(counts, tuple(watched[:WATCH_SHOWN]), len(watched))


def watched_rows(
    request: web.Request, view: LedgerView, board: Board, now: datetime
) -> list[Watched]:
    directory = request.app[LIVE].directory
    statuses = {row.id: row.status for row in board.rows}
    out = []
    for s in view.watched:
        used = s.budget_used_pct
        level: Level = "critical" if used is None or used >= 100 else "warning"
        out.append(
            Watched(
                standing=s,
                customer_name=directory.customer_name(s.customer_id),
                link_status=statuses.get(s.subject_id),
                level=level,
                used=share_text(used),
                used_ratio=meter(None if used is None else used / 100),
                computed=moment(s.computed_at, now, UTC_ZONE),
            )
        )
    return out


# --- the board -----------------------------------------------------------------------


# --- handlers --------------------------------------------------------------------------


async def _dashboard(
    request: web.Request, viewer: Viewer, filters: BoardQuery, page: int
) -> dict[str, object]:
    app = request.app
    directory = app[LIVE].directory
    board = await full_board(request, viewer)
    # The whole dashboard is as of the moment its states were read (the board is kept
    # for a refresh period): one "Updated" time, and every duration counted to it.
    now = board.read_at or app[CLOCK]()
    # Every NOC screen shares one computation of the outages and their countdowns.
    down = await app[CACHE].get(
        ("noc-outages",),
        lambda: outages(request, board, now),
        ttl_s=app[READS].board_ttl("*"),
    )
    view, _ = await ledger_view(request, now)
    failed_deliveries = await app[READS].failed_deliveries()
    underived = await app[READS].state_failures()
    refresh_query = filters.query_string()
    if page > 1:
        refresh_query += ("&" if refresh_query else "?") + f"page={page}"
    shown = {o.row.id for o in down}
    attention = [
        row
        for row in board.rows
        if row.status in (LinkStatus.DEGRADED, LinkStatus.UNKNOWN) and row.id not in shown
    ]
    return {
        "board": board,
        # Read now rather than with the board, which is kept for a whole refresh period:
        # the monitor's own trouble (a database restarting) must show at the next look.
        "notices": tuple(app[NOTICES]()),
        "filters": filters,
        "attention": attention[:ATTENTION_SHOWN],
        "attention_total": len(attention),
        "figures": StandingText(app[LIVE].config),
        "listing": board_page(
            board,
            filters,
            page,
            directory.customer_name(filters.customer) if filters.customer else None,
            path="/noc",
        ),
        "outages": down[:OUTAGES_SHOWN],
        "outages_total": len(down),
        "ledger": view,
        "watched": watched_rows(request, view, board, now),
        "customers": directory.visible_customers(viewer.user),
        "statuses": STATUS_ORDER,
        "outcome_labels": OUTCOMES,
        "refresh_query": refresh_query,
        "notifications_failed": failed_deliveries,
        "state_failures": [
            (f, moment(f.since, now, UTC_ZONE)) for f in underived[:STATE_FAILURES_SHOWN]
        ],
        "state_failures_total": len(underived),
        "updated": board.updated,
        "refresh_seconds": int(app[SETTINGS].refresh.total_seconds()),
    }


async def _noc_html(request: web.Request, *, partial: bool) -> Markup:
    """The dashboard (`partial`: its refreshing part), the same for every NOC viewer: built
    once per cache period for each filter and page, however many screens watch it."""
    viewer = require(request, "noc", partial=partial)
    filters = board_query(request, viewer)
    page = positive_int(request.query, "page", 1, most=10_000)
    template = "_noc.html" if partial else "_noc_page.html"

    async def build() -> Markup:
        context = await _dashboard(request, viewer, filters, page)
        return await asyncio.to_thread(render_fragment, request.app, template, context)

    key = ("noc-html", template, filters.customer, filters.status, page)
    # The dashboard shows the ledger's budgets beside the live outages: held no longer
    # than the ledger's own figures may lag.
    ttl, stale = request.app[READS].ledger_freshness()
    return await request.app[CACHE].get(key, build, ttl_s=ttl, stale_s=stale)


@routes.get("/noc")
async def noc_page(request: web.Request) -> web.Response:
    return render(request, "noc.html", {"page_html": await _noc_html(request, partial=False)})


@routes.get("/partial/noc")
async def noc_partial(request: web.Request) -> web.Response:
    html = await _noc_html(request, partial=True)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


@routes.get("/noc/compliance")
async def compliance_page(request: web.Request) -> web.Response:
    """The compliance rate per scope and period (operations and billing), and the
    contracts behind one count of the overview."""
    viewer = require(request, "compliance")
    app = request.app
    period = choice(request.query, "period", tuple(PERIODS), "this-week")
    outcome = choice(request.query, "outcome", ("all", *OUTCOMES), "all")
    now = app[CLOCK]()
    view, rows = await ledger_view(request, now)
    labels = period_labels(app[LIVE].config, now)
    chosen = [
        s
        for s in rows
        if period_of(s, labels) == period and (outcome == "all" or s.outcome == outcome)
    ]
    chosen.sort(
        key=lambda s: (list(OUTCOMES).index(s.outcome), -(s.budget_used_pct or 0), s.contract_id)
    )
    directory = app[LIVE].directory
    count = next(c for c in view.counts if c.period == period)
    return render(
        request,
        "noc_compliance.html",
        {
            "period": count,
            "outcome": outcome,
            "outcome_labels": OUTCOMES,
            "periods": PERIODS,
            "rows": chosen[:COMPLIANCE_SHOWN],
            "matching": len(chosen),
            "names": {c.id: c.name for c in directory.visible_customers(viewer.user)},
            "ledger_links": can(viewer.user, "ledger"),
            "figures": StandingText(app[LIVE].config),
            "rate_tables": staff_tables(
                await compliance_of(request, None),
                {c.id: c.name for c in directory.visible_customers(viewer.user)},
            ),
        },
    )
