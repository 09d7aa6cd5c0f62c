"""The billing desk: the credit ledger per window with filters and totals, a row with its
adjustments and audit trail, approving and applying credits after a confirmation,
manual adjustments with a reason, the CSV export and the audit trail. Rows flagged for
review (low coverage) carry a badge, have a filter of their own, and are approved only
with the clerk's note on what was checked.

Reading needs the "ledger" capability, changing "settle"; anyone else gets the same 404
as a page that does not exist. Every change goes through `sla.ledger` (one transaction
under its lock, all rows or none) in a POST carrying the session's CSRF token, and is
answered with a redirect to a page showing the result. This module must never change a
ledger row itself, act for anyone but the signed-in user, or read the ledger through the
page cache: a clerk always sees what is stored now.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import hdrs, web

from kernel.config import Config
from kernel.money import minor_units
from portal.attribution_views import TrailLine, trail_lines
from portal.auth import Viewer
from portal.compliance_views import compliance_of, table
from portal.formatting import (
    Moment,
    availability_text,
    duration_text,
    local_span,
    local_time,
    met_text,
    moment,
    money,
    share_text,
    target_text,
)
from portal.keys import CACHE, CLOCK, DATABASE, LIVE, READS
from portal.middleware import bad_request, read_form
from portal.pages.common import (
    digits_only,
    positive_int,
    redirect,
    require,
    timestamp,
    visible_customer,
    window_label,
)
from portal.params import choice
from portal.rendering import render
from portal.scope import can
from sla.ledger import (
    MAX_NOTE_CHARS,
    SETTLED,
    STATUSES,
    UNSETTLED,
    AuditEntry,
    Kind,
    LedgerError,
    LedgerFilter,
    LedgerRow,
    LedgerStatus,
    Total,
    adjust,
    apply,
    approve,
    export_csv,
    is_manual,
    why_not,
)
from sla.spans import US_PER_S

routes = web.RouteTableDef()

UTC_ZONE = ZoneInfo("UTC")
PAGE_ROWS = 100
MAX_SELECTED = 500
MAX_INVOICE_CHARS = 100
# "Recent" windows: those still running or ended within the last six weeks, which holds
# every window still in its grace and the last full month.
RECENT = timedelta(weeks=6)
STATUS_FILTERS: dict[str, tuple[LedgerStatus, ...] | None] = {
    "all": None,
    "todo": ("closed", "approved"),
    **{status: (status,) for status in STATUSES},
}
STATUS_NAMES = {"all": "Any status", "todo": "To settle (closed or approved)"} | {
    s: s.capitalize() for s in STATUSES
}
KINDS: dict[str, Kind | None] = {"all": None, "window": "window", "adjustment": "adjustment"}
REVIEWS: dict[str, bool | None] = {"all": None, "flagged": True, "clear": False}
REVIEW_NAMES = {
    "all": "Flagged or not",
    "flagged": "Needs review (low coverage)",
    "clear": "Not flagged",
}
Action = Literal["approve", "apply"]
ACTIONS: dict[Action, tuple[LedgerStatus, Literal["approved", "applied"]]] = {
    # action -> (the status it needs, the status it gives)
    "approve": ("closed", "approved"),
    "apply": ("approved", "applied"),
}
NOTHING_SELECTED = "Select at least one row first: tick its box in the ledger."
AUDIT_ACTIONS = (
    "all", "created", "recomputed", "closed", "approved", "applied", "adjusted", "withdrawn",
)  # fmt: skip
_AMOUNT = re.compile(r"^[+-]?\d{1,12}(\.\d{1,6})?$")


# --- what the clerk asked for ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeskQuery:
    """The ledger view's filters as given in the query string."""

    window: str  # a label, "" for recent windows, "all" for every window
    customer: str | None
    status: str
    kind: str
    page: int = 1
    review: str = "all"

    def params(self, **changes: object) -> dict[str, str]:
        values = {
            "window": self.window,
            "customer": self.customer or "",
            "status": self.status,
            "kind": self.kind,
            "review": self.review,
            "page": str(self.page),
        }
        values.update({name: str(value) for name, value in changes.items()})
        defaults = {
            "window": "",
            "customer": "",
            "status": "all",
            "kind": "all",
            "review": "all",
            "page": "1",
        }
        return {k: v for k, v in values.items() if v != defaults[k]}

    def url(self, path: str = "/billing", **changes: object) -> str:
        params = self.params(**changes)
        return f"{path}?{urlencode(params)}" if params else path

    def wanted(self, now: datetime) -> LedgerFilter:
        return LedgerFilter(
            windows=(self.window,) if self.window not in ("", "all") else None,
            customer=self.customer,
            statuses=STATUS_FILTERS[self.status],
            kind=KINDS[self.kind],
            ended_after=now - RECENT if self.window == "" else None,
            needs_review=REVIEWS[self.review],
        )

    @property
    def scope(self) -> str:
        """How the windows read in a heading or a file name."""
        return {"": "recent windows", "all": "every window"}.get(self.window, self.window)


def desk_query(request: web.Request, viewer: Viewer) -> DeskQuery:
    query = request.query
    window = query.get("window", "")
    if window not in ("", "all"):
        window = window_label(window) or ""
    customer = query.get("customer") or None
    if customer is not None:
        visible_customer(request, viewer, customer)
    return DeskQuery(
        window=window,
        customer=customer,
        status=choice(query, "status", STATUS_FILTERS, "all"),
        kind=choice(query, "kind", KINDS, "all"),
        page=positive_int(query, "page", 1, most=100_000),
        review=choice(query, "review", REVIEWS, "all"),
    )


def row_ids(values: Iterable[str]) -> list[int]:
    """Ledger row ids from a form or query; 400 for anything but whole numbers."""
    ids = []
    for value in values:
        if not digits_only(value) or len(value) > 18:
            raise bad_request(f"id={value!r} is not a ledger row id")
        ids.append(int(value))
    if len(ids) > MAX_SELECTED:
        raise bad_request(f"Select at most {MAX_SELECTED} rows at a time.")
    return sorted(set(ids))


@dataclass(frozen=True, slots=True)
class Refusal:
    """What to tell the clerk when a request cannot be done; nothing has changed."""

    status: int  # 400: the request itself; 409: the rows' state
    lines: Sequence[str]


def ledger_problem(exc: LedgerError) -> Refusal:
    """The ledger's refusal, line by line: "nothing was approved:" then one row each."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return Refusal(409, lines)


# --- view models ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeskRow:
    row: LedgerRow
    customer_name: str
    availability: str
    target: str
    credit_pct: str
    amount: str  # signed for an adjustment
    who: str  # the latest step: "applied by bill", "computed"
    when: Moment | None
    manual: bool
    action: Action | None  # what this row can go through next

    @property
    def id(self) -> int:
        return self.row.id


def desk_row(row: LedgerRow, names: Mapping[str, str], now: datetime, config: Config) -> DeskRow:
    if row.applied_by is not None:
        who, at = f"applied by {row.applied_by} · {row.invoice_ref}", row.applied_at
    elif row.approved_by is not None:
        who, at = f"approved by {row.approved_by}", row.approved_at
    elif is_manual(row):
        who, at = f"written by {row.created_by}", row.created_at
    elif row.status == "withdrawn":
        who, at = "withdrawn: nothing left to credit", row.computed_at
    else:
        who, at = "computed", row.computed_at
    action: Action | None = (
        "approve" if row.status == "closed" else "apply" if row.status == "approved" else None
    )
    return DeskRow(
        row=row,
        customer_name=names.get(row.customer_id, row.customer_id),
        availability=availability_text(row.availability_pct, _decimals(config, row)),
        target=target_text(row.target_pct),
        credit_pct=share_text(row.credit_pct),
        amount=money(row.amount, row.currency, signed=row.kind == "adjustment"),
        who=who,
        when=moment(at, now, UTC_ZONE),
        manual=is_manual(row),
        action=action,
    )


@dataclass(frozen=True, slots=True)
class TotalLine:
    currency: str
    status: LedgerStatus
    rows: int
    amount: str


def total_lines(totals: Iterable[Total]) -> list[TotalLine]:
    return [TotalLine(t.currency, t.status, t.rows, money(t.amount, t.currency)) for t in totals]


def sums(rows: Iterable[LedgerRow]) -> list[str]:
    """What the rows credit together, per currency."""
    by_currency: dict[str, Decimal] = {}
    for row in rows:
        by_currency[row.currency] = by_currency.get(row.currency, Decimal(0)) + row.amount
    return [money(amount, currency) for currency, amount in sorted(by_currency.items())]


def _names(request: web.Request, viewer: Viewer) -> dict[str, str]:
    return {c.id: c.name for c in request.app[LIVE].directory.visible_customers(viewer.user)}


# --- the ledger ------------------------------------------------------------------------


@routes.get("/billing")
async def ledger_desk(request: web.Request) -> web.Response:
    viewer = require(request, "ledger")
    app = request.app
    now = app[CLOCK]()
    filters = desk_query(request, viewer)
    done = request.query.get("done")
    ids = row_ids(request.query.getall("id", []))
    if ids:
        # The result of a change: exactly the rows it changed, as they are stored now.
        page = await app[READS].ledger_page(LedgerFilter(ids=tuple(ids)), limit=len(ids))
    else:
        offset = (filters.page - 1) * PAGE_ROWS
        page = await app[READS].ledger_page(filters.wanted(now), limit=PAGE_ROWS, offset=offset)
    names = _names(request, viewer)
    rows = [desk_row(row, names, now, app[LIVE].config) for row in page.rows]
    first = (filters.page - 1) * PAGE_ROWS + 1
    # The same compliance summary as /noc/compliance, per customer (the one filtered on).
    rates = await compliance_of(request, filters.customer)
    return render(
        request,
        "billing.html",
        {
            "filters": filters,
            "rows": rows,
            "totals": total_lines(page.totals),
            "matching": page.matching,
            "first": first if rows else 0,
            "last": first + len(rows) - 1,
            "more": not ids and first - 1 + len(rows) < page.matching,
            "result": _result(done, page.rows, viewer) if ids else None,
            "customers": list(names.items()),
            "status_names": STATUS_NAMES,
            "kinds": KINDS,
            "review_names": REVIEW_NAMES,
            "can_settle": _may_settle(viewer),
            "compliance": table("Customer", rates, rates.customers, names),
        },
    )


def _result(done: str | None, rows: Sequence[LedgerRow], viewer: Viewer) -> str | None:
    """The notice after a change, said only where the stored rows bear it out."""
    who = viewer.user.name
    n = len(rows)
    plural = "row" if n == 1 else "rows"
    if done == "approved" and rows and all(r.approved_by == who for r in rows):
        return f"{n} {plural} approved by you, crediting {', '.join(sums(rows))}."
    if done == "applied" and rows and all(r.applied_by == who for r in rows):
        invoices = ", ".join(sorted({r.invoice_ref or "" for r in rows}))
        return (
            f"{n} {plural} applied by you to invoice {invoices}, crediting {', '.join(sums(rows))}."
        )
    return None


def _may_settle(viewer: Viewer) -> bool:
    return can(viewer.user, "settle")


@routes.get("/billing/export.csv")
async def export(request: web.Request) -> web.Response:
    """Every row the filters match (not one page), for the billing system."""
    viewer = require(request, "ledger")
    app = request.app
    now = app[CLOCK]()
    filters = desk_query(request, viewer)
    page = await app[READS].ledger_page(filters.wanted(now), limit=None)
    name = "-".join(
        part
        for part in (
            "linkwatch-ledger",
            filters.window or "recent",
            filters.customer,
            None if filters.status == "all" else filters.status,
            None if filters.kind == "all" else filters.kind,
            None if filters.review == "all" else filters.review,
        )
        if part
    )
    return web.Response(
        text=export_csv(page.rows),
        content_type="text/csv",
        charset="utf-8",
        headers={hdrs.CONTENT_DISPOSITION: f'attachment; filename="{name}.csv"'},
    )


# --- approve and apply -----------------------------------------------------------------


async def _selected(request: web.Request, ids: Sequence[int]) -> list[LedgerRow]:
    page = await request.app[READS].ledger_page(LedgerFilter(ids=tuple(ids)), limit=len(ids))
    missing = sorted(set(ids) - {row.id for row in page.rows})
    if missing:
        raise web.HTTPNotFound()
    return page.rows


async def _confirmation(
    request: web.Request,
    viewer: Viewer,
    action: Action,
    ids: Sequence[int],
    *,
    problem: Refusal | None = None,
    invoice_ref: str = "",
    note: str = "",
    back: str = "/billing",
) -> web.Response:
    now = request.app[CLOCK]()
    rows = await _selected(request, ids)
    _, to = ACTIONS[action]
    refusals = [p for row in rows if (p := why_not(row, to, now)) is not None]
    if problem is None and refusals:
        verb = "approved" if action == "approve" else "applied"
        problem = Refusal(409, [f"Nothing can be {verb} as selected:", *refusals])
    names = _names(request, viewer)
    return render(
        request,
        "billing_confirm.html",
        {
            "action": action,
            "rows": [desk_row(row, names, now, request.app[LIVE].config) for row in rows],
            "sums": sums(rows),
            "problem": problem,
            "invoice_ref": invoice_ref,
            "note": note,
            "flagged": [r for r in rows if r.needs_review] if action == "approve" else [],
            "back": back,
        },
        status=problem.status if problem is not None else 200,
    )


def _back(value: str | None) -> str:
    """Where the clerk came from: the ledger view with its filters, never another site."""
    if value and value.startswith("/billing") and "//" not in value and "\\" not in value:
        return value
    return "/billing"


@routes.get("/billing/confirm")
async def confirm(request: web.Request) -> web.Response:
    """The last look before approving or applying: exactly these rows, these totals."""
    viewer = require(request, "settle")
    asked = choice(request.query, "action", tuple(ACTIONS), "approve")
    action: Action = "apply" if asked == "apply" else "approve"
    back = _back(request.query.get("back"))
    ids = row_ids(request.query.getall("id", []))
    if not ids:
        return _problem_page(request, Refusal(400, [NOTHING_SELECTED]), back)
    return await _confirmation(request, viewer, action, ids, back=back)


def _problem_page(request: web.Request, problem: Refusal, back: str) -> web.Response:
    return render(
        request,
        "billing_problem.html",
        {"problem": problem, "back": back},
        status=problem.status,
    )


async def _settle(request: web.Request, action: Action) -> web.Response:
    viewer = require(request, "settle")
    form = await read_form(request)
    back = _back(form.get("back"))
    invoice = " ".join(form.get("invoice_ref", "").split())
    note = " ".join(form.get("note", "").split())
    ids = row_ids(form.getall("id", []))
    if not ids:
        return _problem_page(request, Refusal(400, [NOTHING_SELECTED]), back)
    if action == "approve":
        flagged = [r for r in await _selected(request, ids) if r.needs_review]
        if flagged and not note:
            problem = Refusal(
                400,
                [
                    "Write what you checked before approving rows flagged for review:",
                    *(f"{r.describe()}: {r.review_reason}" for r in flagged),
                ],
            )
            return await _confirmation(request, viewer, action, ids, problem=problem, back=back)
        if len(note) > MAX_NOTE_CHARS:
            problem = Refusal(400, [f"Keep the note to {MAX_NOTE_CHARS} characters."])
            return await _confirmation(
                request, viewer, action, ids, problem=problem, note=note, back=back
            )
    if action == "apply" and not invoice:
        problem = Refusal(400, ["Enter the invoice reference the credits go on."])
        return await _confirmation(request, viewer, action, ids, problem=problem, back=back)
    if len(invoice) > MAX_INVOICE_CHARS:
        problem = Refusal(400, [f"Keep the invoice reference to {MAX_INVOICE_CHARS} characters."])
        return await _confirmation(request, viewer, action, ids, problem=problem, back=back)
    db, now, actor = request.app[DATABASE], request.app[CLOCK](), viewer.user.name
    try:
        if action == "approve":
            await approve(db, ids, actor, now, note or None)
        else:
            await apply(db, ids, actor, invoice, now)
    except LedgerError as exc:
        problem = ledger_problem(exc)
        return await _confirmation(
            request,
            viewer,
            action,
            ids,
            problem=problem,
            invoice_ref=invoice,
            note=note,
            back=back,
        )
    request.app[CACHE].clear()  # customers' pages show a credit's status: the new one now
    done = "approved" if action == "approve" else "applied"
    return redirect("/billing?" + urlencode([("done", done), *(("id", str(i)) for i in ids)]))


@routes.post("/billing/approve")
async def approve_rows(request: web.Request) -> web.Response:
    return await _settle(request, "approve")


@routes.post("/billing/apply")
async def apply_rows(request: web.Request) -> web.Response:
    return await _settle(request, "apply")


# --- one row ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    value: str
    iso: str | None = None  # a moment: for <time datetime>


def _decimals(config: Config, row: LedgerRow) -> int:
    return config.availability_decimals(row.contract_id, row.window_start)


def figures_of(row: LedgerRow, config: Config) -> list[Figure]:
    """Every stored figure of the row as a person reads it (the CSV and the API keep the
    exact values): durations in words, times local with their zone, money grouped."""
    zone = ZoneInfo(row.timezone)

    def span(value: Decimal) -> str:
        return duration_text(Fraction(value) * US_PER_S)

    def at(moment: datetime) -> Figure:
        return Figure("", local_time(moment, zone), moment.astimezone(UTC).isoformat())

    measured, closes = at(row.measured_until), at(row.closes_at)
    return [
        Figure(
            "Window", f"{row.window_label} · {local_span(row.window_start, row.window_end, zone)}"
        ),
        Figure("Measured until", measured.value, measured.iso),
        Figure("Closes (end of grace)", closes.value, closes.iso),
        Figure("Window length", span(row.window_s)),
        Figure("Excluded (maintenance)", span(row.excluded_s)),
        Figure("Unknown", span(row.unknown_s)),
        Figure("Down", span(row.down_s)),
        Figure("Eligible", span(row.eligible_s)),
        Figure("Coverage", share_text(row.coverage_pct)),
        Figure("Availability", availability_text(row.availability_pct, _decimals(config, row))),
        Figure("Target", target_text(row.target_pct)),
        Figure("Result", met_text(row.met)),
        Figure("Error budget", span(row.budget_s)),
        Figure("Budget used", share_text(row.budget_used_pct)),
        Figure("Outages", str(row.incidents)),
        Figure("Credit steps", str(row.credit_steps)),
        Figure("Credit", share_text(row.credit_pct)),
        Figure("Credit amount", money(row.credit_amount, row.currency)),
        *_review_figures(row),
    ]


def _review_figures(row: LedgerRow) -> list[Figure]:
    out = [Figure("Review", row.review_reason or "not needed")]
    withheld = row.extra_figures.get("withheld_credit_amount")
    if withheld is not None:
        out.append(Figure("Withheld credit", money(Decimal(withheld), row.currency)))
    if row.approval_note is not None:
        out.append(Figure("Approval note", row.approval_note))
    return out


@dataclass(frozen=True, slots=True)
class AuditView:
    entry: AuditEntry
    at: Moment | None
    row: str  # "#12", or "#14 (adjustment)"


async def _row_page(
    request: web.Request,
    viewer: Viewer,
    row_id: int,
    *,
    problem: Refusal | None = None,
    amount: str = "",
    reason: str = "",
) -> web.Response:
    app = request.app
    now = app[CLOCK]()
    reads = app[READS]
    found = await reads.ledger_page(LedgerFilter(ids=(row_id,)), limit=1)
    if not found.rows:
        raise web.HTTPNotFound()
    row = found.rows[0]
    root = row.parent_id if row.parent_id is not None else row.id
    family = (await reads.ledger_page(LedgerFilter(family=root), limit=None)).rows
    kinds = {r.id: r for r in family}
    audit = [
        AuditView(
            entry=e,
            at=moment(e.at, now, UTC_ZONE),
            row=f"#{e.ledger_id}"
            + ("" if kinds[e.ledger_id].kind == "window" else " (adjustment)"),
        )
        for e in reversed(await reads.audit_log(sorted(kinds)))
    ]
    names = _names(request, viewer)
    waiting = next((r for r in family if r.kind == "adjustment" and r.status in UNSETTLED), None)
    credited = [r for r in family if r.status in SETTLED]
    return render(
        request,
        "billing_row.html",
        {
            "row": desk_row(row, names, now, app[LIVE].config),
            "figures": figures_of(row, app[LIVE].config),
            "family": [desk_row(r, names, now, app[LIVE].config) for r in family],
            "credited": sums(credited) if credited else [],
            "audit": audit,
            "can_settle": _may_settle(viewer),
            "may_adjust": row.kind == "window" and row.status in SETTLED,
            "waiting": waiting,
            "problem": problem,
            "amount": amount,
            "reason": reason,
            "places": minor_units(row.currency),
            "done": request.query.get("done") == "adjusted" and is_manual(row),
        },
        status=problem.status if problem is not None else 200,
    )


def _row_id(request: web.Request) -> int:
    text = request.match_info["row_id"]
    if not digits_only(text) or len(text) > 18:
        raise web.HTTPNotFound()
    return int(text)


@routes.get("/billing/ledger/{row_id}")
async def row_page(request: web.Request) -> web.Response:
    viewer = require(request, "ledger")
    return await _row_page(request, viewer, _row_id(request))


@routes.post("/billing/ledger/{row_id}/adjust")
async def adjust_row(request: web.Request) -> web.Response:
    """A manual adjustment: a new row awaiting its own approval, never a change."""
    viewer = require(request, "settle")
    row_id = _row_id(request)
    form = await read_form(request)
    amount_text = form.get("amount", "").strip().replace(" ", "")
    reason = form.get("reason", "")

    async def refused(status: int, *lines: str) -> web.Response:
        problem = Refusal(status, lines)
        return await _row_page(
            request, viewer, row_id, problem=problem, amount=amount_text, reason=reason
        )

    found = await request.app[READS].ledger_page(LedgerFilter(ids=(row_id,)), limit=1)
    if not found.rows:
        raise web.HTTPNotFound()
    currency = found.rows[0].currency
    if not reason.strip():
        return await refused(400, "Give the reason for the adjustment; it goes on the record.")
    if not _AMOUNT.fullmatch(amount_text):
        return await refused(
            400, "Write the amount as a number such as 25.00, or -12.50 to take credit back."
        )
    amount = Decimal(amount_text)  # the pattern admits only what Decimal reads exactly
    if amount == 0:
        return await refused(400, "An adjustment of 0 changes nothing; give the amount.")
    places = minor_units(currency)
    if amount != round(amount, places):
        return await refused(400, f"{currency} amounts use at most {places} decimal places.")
    try:
        made = await adjust(
            request.app[DATABASE], row_id, amount, reason, viewer.user.name, request.app[CLOCK]()
        )
    except LedgerError as exc:  # the row's state: settled or not, an adjustment waiting
        return await refused(409, str(exc))
    request.app[CACHE].clear()
    return redirect(f"/billing/ledger/{made.id}?done=adjusted")


# --- the audit trail -------------------------------------------------------------------


@routes.get("/billing/audit")
async def audit_view(request: web.Request) -> web.Response:
    viewer = require(request, "ledger")
    app = request.app
    now = app[CLOCK]()
    query = request.query
    row_text = query.get("row", "")
    if row_text and (not digits_only(row_text.lstrip("#")) or len(row_text) > 18):
        raise web.HTTPBadRequest(text="row must be a ledger row id")
    row = int(row_text.lstrip("#")) if row_text else None
    action = choice(query, "action", AUDIT_ACTIONS, "all")
    customer = query.get("customer") or None
    if customer is not None:
        visible_customer(request, viewer, customer)
    since = timestamp(query.get("since"), "since")
    until = timestamp(query.get("until"), "until")
    limit = positive_int(query, "limit", 200, most=5000)
    window = window_label(query.get("window"))
    actor = query.get("actor", "").strip() or None
    lines = await app[READS].audit_page(
        row=row,
        actor=actor,
        action=None if action == "all" else action,
        window=window,
        customer=customer,
        since=since,
        until=until,
        limit=limit,
    )
    names = _names(request, viewer)
    trail = await attribution_trail(request, customer, actor, since, until, limit)
    customer_links = None
    if customer is not None:
        customer_links = [link.id for link in app[LIVE].config.links if link.customer == customer]
    work = await app[READS].work_trail(customer, customer_links, since, until, actor, limit)
    return render(
        request,
        "billing_audit.html",
        {
            "attribution_lines": trail,
            "work_lines": [(entry, moment(entry.at, now, UTC_ZONE)) for entry in work],
            "lines": [(line, moment(line.entry.at, now, UTC_ZONE)) for line in lines],
            "names": names,
            "customers": list(names.items()),
            "actions": AUDIT_ACTIONS,
            "limit": limit,
            "wanted": {
                "row": row_text,
                "actor": actor or "",
                "action": action,
                "window": window or "",
                "customer": customer or "",
                "since": query.get("since", ""),
                "until": query.get("until", ""),
            },
        },
    )


async def attribution_trail(
    request: web.Request,
    customer: str | None,
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[TrailLine]:
    """Outage attributions made and withdrawn, beside the ledger's trail: they change
    credits, so billing sees who attributed what, when and why."""
    app = request.app
    links = None
    if customer is not None:
        links = [link.id for link in app[LIVE].config.links if link.customer == customer]
    found = await app[READS].attribution_trail(links, since, until, limit)
    lines = trail_lines(found, app[CLOCK](), UTC_ZONE)
    if actor is not None:
        lines = [line for line in lines if line.actor == actor]
    return lines[:limit]
