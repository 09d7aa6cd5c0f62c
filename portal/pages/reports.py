"""A customer's documents: the printable monthly SLA reports, the service credits per
window, and the maintenance that concerns their links.

Customers see their own; staff choose a customer (reports, credits) or see everything
(maintenance). Another customer's report or credits answer exactly like a customer that
does not exist (404), and the maintenance list names only links the viewer may see. Staff
who work the ledger are sent to the billing desk instead of the customer's credit view.

Nothing here writes, and nothing computes a figure of its own: the report is
`sla.monthly`'s, the credits are the ledger's rows, only put into words.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from aiohttp import web

from kernel.config import Config, Contract, Customer
from kernel.domain import MaintenanceWindow
from portal.auth import Viewer
from portal.credit_views import CreditView, credit_view
from portal.formatting import local_span, money
from portal.keys import CLOCK, LIVE, PRINTER, READS
from portal.maintenance_views import MaintenanceView, maintenance_view
from portal.middleware import PortalError, bad_request
from portal.pages.common import month_label, redirect, require_viewer, visible_customer
from portal.rendering import render
from portal.scope import Directory, can
from sla.ledger import LedgerRow
from sla.monthly import check_month
from sla.pdf import PdfEngineMissing, PdfError, require_browser
from sla.report import WindowNotBegun

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MONTHS_SHOWN = 13  # raw samples are kept 13 months by default: older reports lose detail
MAX_LINKS_NAMED = 12  # a maintenance window lists at most this many links by name
MAX_CONTRACTS_DECIDED = 50  # beyond this, staff see the rule instead of every decision

# The printable report is one self-contained document with its stylesheet inline. Its
# policy allows that stylesheet alone (by hash), and nothing else: no script, no fetch.
REPORT_POLICY = (
    "default-src 'none'; style-src {style}; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def _customer_for(request: web.Request, viewer: Viewer) -> Customer | None:
    """The customer a page is about: a customer's own, or the one staff chose (None when
    staff have not chosen). Anything the viewer may not see is a 404."""
    directory = request.app[LIVE].directory
    wanted = request.query.get("customer") or None
    if not viewer.user.is_staff:
        own = viewer.user.customer
        if own is None or (wanted is not None and wanted != own):
            raise web.HTTPNotFound()
        return visible_customer(request, viewer, own)
    if wanted is None:
        return None
    if directory.visible_customer(viewer.user, wanted) is None:
        raise web.HTTPNotFound()
    return visible_customer(request, viewer, wanted)


def _page(
    request: web.Request,
    viewer: Viewer,
    template: str,
    customer: Customer | None,
    context: Mapping[str, object],
) -> web.Response:
    """A page about one customer; staff also get the customers to choose from."""
    directory = request.app[LIVE].directory
    customers = directory.visible_customers(viewer.user) if viewer.user.is_staff else []
    return render(request, template, {"customer": customer, "customers": customers, **context})


# --- reports --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthLink:
    label: str
    name: str
    state: str
    href: str
    pdf_href: str  # the same report as a PDF download


MONTH_STATES = {
    "running": "in progress: provisional figures",
    "provisional": "provisional: late data may still change it",
    "complete": "complete",
}


async def report_months(request: web.Request, customer: Customer) -> list[MonthLink]:
    """The months a report can be had for, newest first, from the one monitoring began:
    complete only once the ledger has closed every window the report covers."""
    app = request.app
    now = app[CLOCK]()

    entries = await app[READS].report_months(customer, now, MONTHS_SHOWN)
    return [
        MonthLink(
            label=e.label,
            name=e.name,
            state=MONTH_STATES[e.state],
            href=f"/reports/monthly?customer={customer.id}&month={e.label}",
            pdf_href=f"/reports/monthly.pdf?customer={customer.id}&month={e.label}",
        )
        for e in entries
    ]


@routes.get("/reports")
async def reports_page(request: web.Request) -> web.Response:
    viewer = require_viewer(request)
    customer = _customer_for(request, viewer)
    months: list[MonthLink] = []
    if customer is not None:
        months = await report_months(request, customer)
    return _page(request, viewer, "reports.html", customer, {"months": months})


def _report_asked(request: web.Request) -> tuple[Customer, str, datetime]:
    """The customer and month of the report the query asks for, if this viewer may see
    it and it has begun, and the time it is worked out at: for the page and its PDF."""
    viewer = require_viewer(request)
    customer = _customer_for(request, viewer)
    if customer is None:
        raise bad_request("customer is required: choose one on /reports")
    label = month_label(request.query.get("month"))
    if label is None:
        raise bad_request("month is required; write it as 2026-11")
    app = request.app
    now = app[CLOCK]()
    try:
        check_month(customer, label, now)
    except WindowNotBegun as exc:
        # Well formed, but there is no such report yet: a 404 saying why, as the API's.
        raise PortalError(404, f"month={label!r} {exc.reason}") from None
    return customer, label, now


@routes.get("/reports/monthly")
async def monthly_report_page(request: web.Request) -> web.Response:
    customer, label, now = _report_asked(request)
    back = f"/reports?customer={customer.id}"  # the report is a page of its own: a way back
    html = await request.app[READS].monthly_report(customer.id, label, now, back_href=back)
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = report_policy(html)
    return response


@routes.get("/reports/monthly.pdf")
async def monthly_report_pdf(request: web.Request) -> web.Response:
    """The same report printed to PDF, as a download named after customer and month."""
    customer, label, now = _report_asked(request)
    try:
        require_browser()  # said before the report is worked out, not after
        html = await request.app[READS].monthly_report(customer.id, label, now)
        pdf = await request.app[PRINTER].print_pdf(html)
    except PdfEngineMissing as exc:
        raise PortalError(503, str(exc)) from None
    except PdfError as exc:
        log.warning("monthly report pdf failed month=%s error=%s", request.query.get("month"), exc)
        raise PortalError(
            503, "The PDF could not be made just now; the report itself is on the page beside it."
        ) from None
    name = re.sub(r"[^A-Za-z0-9._-]", "-", f"sla-report-{customer.id}-{label}.pdf")
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def report_policy(html: str) -> str:
    """The report's Content-Security-Policy: its own inline stylesheet, by hash."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode() + "'"
        for m in _STYLE.findall(html)
    ]
    return REPORT_POLICY.format(style=" ".join(hashes) or "'none'")


# --- credits --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowGroup:
    label: str
    span: str
    rows: tuple[CreditView, ...]
    total: str


@dataclass(frozen=True, slots=True)
class Totals:
    credited: str
    approved: str
    pending: str


def _sum(rows: Sequence[LedgerRow]) -> str:
    by_currency: dict[str, Decimal] = {}
    for row in rows:
        by_currency[row.currency] = by_currency.get(row.currency, Decimal(0)) + row.amount
    if not by_currency:
        return "none"
    return ", ".join(money(amount, cur) for cur, amount in sorted(by_currency.items()))


def credit_groups(
    rows: Sequence[LedgerRow], now: datetime, config: Config, tz: tzinfo
) -> list[WindowGroup]:
    """Ledger rows grouped by window, the latest to end first (a running month before the
    weeks inside it), adjustments after their row; times in the customer's zone `tz`."""
    by_label: dict[str, list[LedgerRow]] = {}
    for row in sorted(rows, key=lambda r: (r.window_end, r.window_start, r.id), reverse=True):
        by_label.setdefault(row.window_label, []).append(row)
    groups = []
    for label, mine in by_label.items():
        mine.sort(key=lambda r: (r.contract_id, r.subject_id, r.id))
        first = mine[0]
        groups.append(
            WindowGroup(
                label=label,
                span=local_span(first.window_start, first.window_end, tz),
                rows=tuple(
                    credit_view(
                        r, now, tz, config.availability_decimals(r.contract_id, r.window_start)
                    )
                    for r in mine
                ),
                total=_sum(mine),
            )
        )
    return groups


@routes.get("/credits")
async def credits_page(request: web.Request) -> web.Response:
    viewer = require_viewer(request)
    if can(viewer.user, "ledger"):
        return redirect("/billing")
    customer = _customer_for(request, viewer)
    app = request.app
    groups: list[WindowGroup] = []
    totals = None
    if customer is not None:
        now = app[CLOCK]()
        rows = await app[READS].ledger_rows(customer=customer.id, begun_by=now)
        tz = app[LIVE].directory.customer_tz(customer.id)
        groups = credit_groups(rows, now, app[LIVE].config, tz)
        totals = Totals(
            credited=_sum([r for r in rows if r.status == "applied"]),
            approved=_sum([r for r in rows if r.status == "approved"]),
            pending=_sum([r for r in rows if r.status in ("open", "closed")]),
        )
    return _page(request, viewer, "credits.html", customer, {"groups": groups, "totals": totals})


# --- maintenance ----------------------------------------------------------------------------


def _covered(
    directory: Directory,
    viewer: Viewer,
    window: MaintenanceWindow,
    contracts: Mapping[str, Sequence[Contract]],
) -> tuple[tuple[str, ...], list[Contract] | None] | None:
    """What `window` covers that the viewer may see, in words, and the contracts that
    decide whether it is excluded (None: too many to list, staff see the rule); None
    when it concerns nothing the viewer may see. `contracts`: the viewer's, by customer."""
    user = viewer.user
    everything = not window.link_ids and not window.customer_ids
    named = [lid for lid in window.link_ids if directory.visible_link(user, lid) is not None]
    if not user.is_staff:
        own = user.customer
        if own is None:
            return None
        mine = list(contracts.get(own, ()))
        if everything or own in window.customer_ids:
            return ("all your links",), mine
        if not named:
            return None
        return _named(named), [c for c in mine if set(c.links) & set(named)]
    if everything:
        return ("all links",), None
    words = [f"all links of {directory.customer_name(c)}" for c in window.customer_ids]
    deciding: list[Contract] = []
    for customer_id in window.customer_ids:
        deciding += contracts.get(customer_id, ())
    for link_id in named:
        deciding += [c for c in directory.contracts_of_link(link_id) if c not in deciding]
    decided = deciding if len(deciding) <= MAX_CONTRACTS_DECIDED else None
    return (*words, *_named(named)), decided


def _named(link_ids: Sequence[str]) -> tuple[str, ...]:
    if len(link_ids) <= MAX_LINKS_NAMED:
        return tuple(link_ids)
    rest = len(link_ids) - MAX_LINKS_NAMED
    return (*link_ids[:MAX_LINKS_NAMED], f"and {rest} more")


@routes.get("/maintenance")
async def maintenance_page(request: web.Request) -> web.Response:
    viewer = require_viewer(request)
    app = request.app
    now = app[CLOCK]()
    directory = app[LIVE].directory
    tz = directory.viewer_tz(viewer.user)
    contracts: dict[str, list[Contract]] = {}
    for contract in directory.visible_contracts(viewer.user):  # once, not per window
        contracts.setdefault(contract.customer, []).append(contract)
    views: list[MaintenanceView] = []
    for window in await app[READS].maintenance_around(now):
        covered = _covered(directory, viewer, window, contracts)
        if covered is None:
            continue
        links, deciding = covered
        views.append(
            maintenance_view(window, deciding, app[LIVE].config, now, tz, links=links)
            if deciding is not None
            else maintenance_view(window, (), app[LIVE].config, now, tz, links=links, rule=True)
        )
    current = [v for v in views if v.state == "in progress"]
    upcoming = [v for v in views if v.state == "upcoming"]  # soonest first: what comes next
    past = [v for v in reversed(views) if v.state == "past"]  # newest first
    return render(
        request,
        "maintenance.html",
        {"current": current, "upcoming": upcoming, "past": past},
    )
