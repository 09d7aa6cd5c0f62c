"""The JSON API under /api/v1: the pages' data for machines, with the pages' authorisation.

Requests sign in with an API token (``Authorization: Bearer lw_...``), never a cookie.
Errors are JSON of one stable shape, ``{"error": {"status", "title", "message"}}``
(written by `portal.middleware`). Each endpoint is declared once with `endpoint`, which
registers its route, checks its query against the declaration and documents it in the
OpenAPI document served at /api/v1/openapi.json.

Who sees what is `portal.scope`'s answer, asked before anything is read: an object
outside the caller's scope is a 404 with the same body as one that does not exist, and
so is an action the caller's role may not take. This module must never hand a customer
another customer's link, report, credit or maintenance target, put an exception's text
in a response (only `PortalError` messages, written for people), or answer 5xx for
anything a client sends.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar, cast

from aiohttp import web

from collector.rollups import BUCKETS, Bucket, Rollup
from collector.state_reads import Incident
from kernel import __version__
from kernel.config import Config, Contract, Link, ResolvedTerms
from kernel.domain import LinkState, LinkStatus, MaintenanceWindow, ProbeState
from portal.api import openapi, schemas
from portal.api.openapi import Operation, Param
from portal.api.params import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Cursors,
    Key,
    check_query,
    ident,
    json_object,
    paginate,
    required_window_label,
    text_field,
    time_range,
    window_label,
)
from portal.api.schemas import (
    CURSOR,
    DURATION_MAX_CHARS,
    DURATION_PATTERN,
    ID_PATTERN,
    MOMENT,
    PERSON_TEXT_PATTERN,
    WINDOW_PATTERN,
    YEARS,
    ref,
)
from portal.auth import Account, Viewer
from portal.board import covering
from portal.keys import CACHE, CLOCK, DATABASE, LIVE, READS, SETTINGS, VIEWER
from portal.middleware import PortalError
from portal.params import choice
from portal.scope import can
from sla.compute import seconds
from sla.ledger import (
    MAX_NOTE_CHARS,
    STATUSES,
    LedgerError,
    LedgerRow,
    apply,
    approve,
)
from sla.records import record
from sla.report import (
    ContractWindow,
    WindowPlan,
    WindowUnavailable,
    concerns,
)

routes = web.RouteTableDef()
PREFIX = "/api/v1"
OPERATIONS: list[Operation] = []

CURSORS = web.AppKey("api_cursors", Cursors)
DOCUMENT: web.AppKey[dict[str, Any]] = web.AppKey("api_document")
OPERATION = web.RequestKey("api_operation", Operation)

T = TypeVar("T")
Body = dict[str, Any]
Handler = Callable[[web.Request, Account], Awaitable[Body]]

INCIDENT_HISTORY = timedelta(days=30)
MAINTENANCE_AHEAD = timedelta(days=90)
# A series is one answer, not pages: its span is bounded, so that one is never more than
# 31 * 24 hourly or 400 daily points a probe.
SERIES: dict[str, tuple[timedelta, timedelta]] = {  # bucket: (default span, longest)
    "hour": (timedelta(hours=24), timedelta(days=31)),
    "day": (timedelta(days=30), timedelta(days=400)),
}
MAX_INVOICE_REF_CHARS = 200
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

_HOURS_AT_MOST = SERIES["hour"][1].days
_DAYS_AT_MOST = SERIES["day"][1].days

DESCRIPTION = f"""\
Linkwatch's data for machines: links and their status, incidents, measurements,
availability against contracts, SLA reports, the credit ledger and maintenance.

Every operation but this document needs an API token (made on the portal's account
page), sent as `Authorization: Bearer lw_...`. A token sees exactly what its user sees on
the pages: a customer only their own links, contracts, reports, credits and the
maintenance that concerns them; ops, billing and admin every customer's. Anything
outside that scope answers 404 exactly as something that does not exist, and so does an
action the role may not take (approving and applying credits is for billing and admin).
A customer naming another customer in a `customer` filter gets 404, as on the pages.
The ledger (credits) is for billing, admin and the customer it concerns; ops get 404.

Lists come in pages: `limit` (1 to 500, default 100) items, in a fixed order, and a
`next_cursor` to pass as `cursor` for the next page (null on the last one). A cursor is
opaque, made only by the API, and belongs to its query: altered, made up, or used with
other filters, it is a 400.

Every parameter's schema states what it takes (patterns, minimums, maximums): a value
it refuses is a 400 whose message names the parameter, the value and what is allowed,
and a value it allows is read. What a schema cannot state is said in words where it
applies. A well-formed window that does not exist (a week 53 in a year of 52 weeks) or
has no report (it has not begun, or ended before anything was measured) is a 404 saying
why, not a 400; a time range that is empty or reversed holds nothing. Besides the
cursor's, only two rules join parameters, both of a series, and breaking one is a 400
that says so: `from` and `range` are not given together, and a series spans at most
{_HOURS_AT_MOST} days of hours or {_DAYS_AT_MOST} of days.

Errors are JSON, `{{"error": {{"status", "title", "message"}}}}`, whatever the status. An
unknown, repeated or empty query parameter is a 400. Request bodies are JSON objects of
at most 64 KiB. Times are RFC 3339: UTC in link data, the customer's offset in SLA
records; a time parameter takes one with its offset, or a date meaning its midnight
UTC, in the years 1970 to 9998. Percentages and money are decimal strings, never floats.
"""


def add_routes(app: web.Application) -> None:
    app[CURSORS] = Cursors.for_settings(app[SETTINGS])
    app[DOCUMENT] = api_document()
    app.router.add_routes(routes)


def api_document() -> dict[str, Any]:
    return openapi.document(
        OPERATIONS,
        schemas.schemas(),
        title="Linkwatch API",
        version=__version__,
        description=DESCRIPTION,
    )


# --- declaring endpoints -----------------------------------------------------------------


def require_token(request: web.Request) -> Viewer:
    viewer = request[VIEWER]
    if viewer is None:
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="linkwatch"'})
    return viewer


def endpoint(
    method: Literal["GET", "POST"],
    path: str,
    operation_id: str,
    summary: str,
    *,
    response: openapi.JsonSchema,
    description: str = "",
    params: tuple[Param, ...] = (),
    errors: tuple[int, ...] = (),
    body: openapi.JsonSchema | None = None,
    body_required: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare an operation that needs a token, and route it to the decorated handler,
    which receives the token's user and returns the JSON body of its 200 answer."""
    operation = Operation(
        method=method,
        path=PREFIX + path,
        operation_id=operation_id,
        summary=summary,
        description=description or summary + ".",
        response=response,
        params=params,
        errors=errors,
        body=body,
        body_required=body_required,
    )
    OPERATIONS.append(operation)

    def register(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.Response:
            user = require_token(request).user
            check_query(request, operation)
            request[OPERATION] = operation
            return json_response(await handler(request, user))

        routes.route(method, operation.path)(run)
        return handler

    return register


OPENAPI = Operation(
    method="GET",
    path=f"{PREFIX}/openapi.json",
    operation_id="getOpenApi",
    summary="This API's OpenAPI document",
    description="The OpenAPI 3.1 document of every operation; needs no token.",
    response={"type": "object"},
    errors=(400,),
    secured=False,
)
OPERATIONS.append(OPENAPI)


@routes.get(OPENAPI.path, allow_head=False)
async def openapi_document(request: web.Request) -> web.Response:
    check_query(request, OPENAPI)
    return json_response(request.app[DOCUMENT])


def _json_default(value: object) -> object:
    # As `linkwatch report sla --format json` writes them: seconds are numbers.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


# NaN and infinities are not JSON: measurements are made finite before they get here.
_dumps = functools.partial(json.dumps, default=_json_default, allow_nan=False)


def json_response(body: Body) -> web.Response:
    return web.json_response(body, dumps=_dumps)


# --- parameters --------------------------------------------------------------------------

LIMIT = Param(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    "How many items a page holds.",
)
PAGE_CURSOR = Param(
    "cursor",
    CURSOR,
    "The previous page's `next_cursor`, unchanged, with the same other parameters (`limit` "
    "may change); leave it out for the first page. Only the API makes cursors: one it did "
    "not give for this query is a 400.",
)
PAGING = (LIMIT, PAGE_CURSOR)
ID: openapi.JsonSchema = {
    "type": "string",
    "pattern": ID_PATTERN,
    "description": "An id: 1 to 63 lower-case letters, digits, '.', '_' or '-', starting "
    "with a letter or digit.",
}
CUSTOMER = Param(
    "customer",
    ID,
    "Only this customer's. A customer may name only themselves: any other customer "
    "answers 404, as one that does not exist.",
)
LINK_ID = Param("link_id", ID, "The link's id.", where="path")
CREDIT_ID = Param(
    "credit_id", {"type": "integer", "minimum": 1}, "The ledger row's id.", where="path"
)
WINDOW = Param(
    "window",
    {"type": "string", "pattern": WINDOW_PATTERN},
    f"A window label, in each contract's own time zone: an ISO week (2026-W47; W01 to W53) "
    f"or a calendar month (2026-11), in the years {YEARS}. Week 53 exists only in the years "
    "that have one (2020, 2026, 2032, ...): in another year it names no window, a 404.",
)
FROM = Param("from", MOMENT, "The start of the range: a time with its offset, or a date (UTC).")
TO = Param(
    "to",
    MOMENT,
    "The end of the range, exclusive: a time with its offset, or a date (UTC). A `to` at "
    "or before `from` leaves nothing in the range.",
)
STATUS_VALUES = tuple(status.value for status in LinkStatus)
LINK_STATUS = Param(
    "status",
    {"type": "string", "enum": list(STATUS_VALUES)},
    "Only links in this status (as shown: maintenance overrides what is measured).",
)
LEDGER_STATUS = Param(
    "status", {"type": "string", "enum": list(STATUSES)}, "Only rows in this status."
)
DATA = (503,)  # every operation that reads the database may find it away


# --- who may see what --------------------------------------------------------------------


def _visible_link(request: web.Request, user: Account) -> Link:
    link = request.app[LIVE].directory.visible_link(user, request.match_info["link_id"])
    if link is None:
        raise web.HTTPNotFound()
    return link


def _one_of(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    """An optional parameter with a fixed set of values; absent means no filter."""
    if name not in request.query:
        return None
    return choice(request.query, name, allowed, "")


def _customer_filter(request: web.Request, user: Account) -> str | None:
    """The `customer` asked for, if the caller may see it; otherwise the same 404 as an
    unknown customer, never a view of another customer's data."""
    customer = ident(request, "customer")
    if (
        customer is not None
        and request.app[LIVE].directory.visible_customer(user, customer) is None
    ):
        raise web.HTTPNotFound()
    return customer


def _customer_scope(request: web.Request, user: Account) -> frozenset[str] | None:
    """The customers whose data a query covers: None for every customer (staff without a
    filter), else the set (empty for a role that sees nothing)."""
    customer = _customer_filter(request, user)
    if customer is not None:
        return frozenset({customer})
    if can(user, "all_customers"):
        return None
    if user.role == "customer" and user.customer is not None:
        return frozenset({user.customer})
    return frozenset()


def _page(
    request: web.Request,
    items: Sequence[T],
    key: Callable[[T], Key],
    render: Callable[[T], Body],
    *,
    descending: bool = False,
) -> Body:
    chosen, cursor = paginate(
        request, request[OPERATION], request.app[CURSORS], items, key, descending=descending
    )
    return {"items": [render(item) for item in chosen], "next_cursor": cursor}


# --- formats -----------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _decimal(value: Decimal) -> str:
    return f"{value:f}"


# --- the token's user --------------------------------------------------------------------


@endpoint("GET", "/me", "getMe", "Who the token belongs to", response=ref("Me"))
async def me(request: web.Request, user: Account) -> Body:
    return {"name": user.name, "role": user.role, "customer": user.customer}


# --- links -------------------------------------------------------------------------------


def _probe(link: Link, state: ProbeState) -> Body:
    spec = next((p for p in link.probes if p.id == state.probe_id), None)
    return {
        "id": state.probe_id,
        "kind": state.kind,
        "availability": spec.availability if spec is not None else True,
        "status": state.status.value,
        "since": _iso(state.since),
        "since_exact": state.since_exact,
        "last_observed_at": _iso(state.last_observed_at),
        "rtt_ms": _finite(state.rtt_ms),
        "loss_pct": _finite(state.loss_pct),
        "error": state.error,
    }


def _link(
    request: web.Request,
    link: Link,
    state: LinkState | None,
    active: Sequence[MaintenanceWindow],
    now: datetime,
) -> Body:
    measured = state.status if state is not None else LinkStatus.UNKNOWN
    window = covering(active, link, now)
    return {
        "id": link.id,
        "customer": link.customer,
        "customer_name": request.app[LIVE].directory.customer_name(link.customer),
        "description": link.description,
        "status": (LinkStatus.MAINTENANCE if window is not None else measured).value,
        "measured_status": measured.value,
        "since": _iso(state.since) if state is not None else None,
        "since_exact": state.since_exact if state is not None else True,
        "maintenance": None
        if window is None
        else {"id": window.id, "description": window.description},
    }


async def _states(
    request: web.Request, links: Sequence[Link], scope: str, now: datetime
) -> tuple[dict[str, LinkState], list[MaintenanceWindow]]:
    """Current states under the pages' cache: `scope` names the set of links (the same
    name for the same set, whoever asks)."""
    reads = request.app[READS]
    return await reads.link_states(links, scope, now), await reads.active_maintenance(now)


@endpoint(
    "GET",
    "/links",
    "listLinks",
    "Links and their current status",
    description="The caller's links in id order, with their status as the board shows it.",
    response=ref("LinkPage"),
    params=(CUSTOMER, LINK_STATUS, *PAGING),
    errors=(400, 404, *DATA),
)
async def list_links(request: web.Request, user: Account) -> Body:
    customer = _customer_filter(request, user)
    status = _one_of(request, "status", STATUS_VALUES)
    links = sorted(
        request.app[LIVE].directory.visible_links(user, customer_id=customer), key=lambda x: x.id
    )
    now = request.app[CLOCK]()
    if status is None:
        # Only the page's links need their state read.
        chosen, cursor = paginate(
            request, request[OPERATION], request.app[CURSORS], links, lambda x: (x.id,)
        )
        states, active = await _states(
            request, chosen, "api:" + ",".join(x.id for x in chosen), now
        )
        rows = [_link(request, x, states.get(x.id), active, now) for x in chosen]
        return {"items": rows, "next_cursor": cursor}
    if customer is None and can(user, "all_customers"):
        scope = "*"  # the board's own name for every link
    else:
        scope = f"customer:{customer or user.customer}"
    states, active = await _states(request, links, scope, now)
    rows = [_link(request, x, states.get(x.id), active, now) for x in links]
    shown = [row for row in rows if row["status"] == status]
    return _page(request, shown, lambda row: (row["id"],), lambda row: row)


@endpoint(
    "GET",
    "/links/{link_id}",
    "getLink",
    "One link, its current status and its probes'",
    response=ref("LinkDetail"),
    params=(LINK_ID,),
    errors=(404, *DATA),
)
async def get_link(request: web.Request, user: Account) -> Body:
    link = _visible_link(request, user)
    now = request.app[CLOCK]()
    states, active = await _states(request, [link], f"link:{link.id}", now)
    state = states.get(link.id)
    return {
        **_link(request, link, state, active, now),
        "probes": [_probe(link, p) for p in state.probes] if state is not None else [],
        "contracts": [c.id for c in request.app[LIVE].directory.contracts_of_link(link.id)],
    }


def _incident(incident: Incident) -> Body:
    duration = incident.duration
    return {
        "link": incident.link_id,
        "starts_at": _iso(incident.starts_at),
        "ends_at": _iso(incident.ends_at),
        "running": incident.running,
        "duration_s": None if duration is None else seconds(duration // MICROSECOND),
        "seen_until": _iso(incident.seen_until),
        "probes": [
            {"probe": p.probe_id, "starts_at": _iso(p.starts_at), "error": p.error}
            for p in incident.probes
        ],
    }


@endpoint(
    "GET",
    "/links/{link_id}/incidents",
    "listLinkIncidents",
    "The link's outages, newest first",
    description="Outages overlapping [from, to), newest first, each with its real start. "
    "`to` defaults to now and `from` to 30 days before `to`; any span may be asked for, "
    "a page at a time.",
    response=ref("IncidentPage"),
    params=(LINK_ID, FROM, TO, *PAGING),
    errors=(400, 404, *DATA),
)
async def link_incidents(request: web.Request, user: Account) -> Body:
    link = _visible_link(request, user)
    now = request.app[CLOCK]()
    start, end = time_range(request, now, before=INCIDENT_HISTORY)
    found: list[Incident] = []
    if start < end:  # a reversed range would still meet an outage spanning both ends
        found = list(await request.app[READS].incidents(link.id, start, end))
    found.sort(key=lambda i: i.starts_at, reverse=True)
    return _page(request, found, lambda i: (_micros(i.starts_at),), _incident, descending=True)


def _unavailable(label: str, plans: Sequence[WindowPlan]) -> PortalError | None:
    """The 404 for a window with nothing to report for anyone asked about, saying why
    (as the monthly report page and `linkwatch report sla` do); None when there is. The
    label is well formed: it is the report that does not exist (yet), like a missing
    object, which a client must not take for a mistake in its request."""
    if any(plan.todo for plan in plans):
        return None
    for plan in plans:
        try:
            plan.check()
        except WindowUnavailable as exc:
            return PortalError(404, f"window={label!r} {exc.reason}")
    return None


@endpoint(
    "GET",
    "/links/{link_id}/availability",
    "getLinkAvailability",
    "The link's availability against each of its contracts",
    description="One SLA record per contract of the link. Without `window`, each contract "
    "over its own running window (a week or a month); with one, every contract over that "
    "window, `contractual` telling whether it is a window the contract pays credits on.",
    response=ref("Availability"),
    params=(LINK_ID, WINDOW),
    errors=(400, 404, *DATA),
)
async def link_availability(request: web.Request, user: Account) -> Body:
    link = _visible_link(request, user)
    label = window_label(request)
    app = request.app
    config, now = app[LIVE].config, app[CLOCK]()
    contracts = list(app[LIVE].directory.contracts_of_link(link.id))
    found: list[ContractWindow] = []
    if label is None:
        by_kind: dict[Literal["week", "month"], list[Contract]] = {}
        for contract in contracts:
            terms = contract.terms_at(now, config.plans)
            if terms is not None:
                by_kind.setdefault(terms.window, []).append(contract)
        for kind, members in sorted(by_kind.items()):
            found += await app[READS].windows(members, kind, now)
    elif contracts:
        ids = tuple(sorted(c.id for c in contracts))
        plan, found = await app[READS].contract_windows(label, now, contract_ids=ids, any_kind=True)
        if (problem := _unavailable(label, [plan])) is not None:
            raise problem
    order = {contract.id: i for i, contract in enumerate(contracts)}
    found = sorted(
        (item for item in found if link.id in item.subject.link_ids),
        key=lambda item: (order[item.contract.id], item.result.window.start),
    )
    items = []
    statuses: dict[str, Mapping[tuple[str, str], str]] = {}
    for item in found:
        window = item.result.window
        contractual = item.terms.window == window.kind
        status = None
        if contractual:
            # Where billing has a ledger row, its status (approved, applied) is the truth.
            if window.label not in statuses:
                statuses[window.label] = await app[READS].window_statuses(window.label)
            status = statuses[window.label].get((item.contract.id, item.subject.id))
        items.append({**record(item, now, status), "contractual": contractual})
    return {"link": link.id, "items": items}


def _point(rollup: Rollup) -> Body:
    return {
        "probe": rollup.probe_id,
        "bucket_start": _iso(rollup.bucket_start),
        "bucket_end": _iso(rollup.bucket_end),
        "samples_up": rollup.samples_up,
        "samples_degraded": rollup.samples_degraded,
        "samples_down": rollup.samples_down,
        "samples_unknown": rollup.samples_unknown,
        "samples_expected": _finite(rollup.samples_expected),
        "rtt_mean_ms": _finite(rollup.rtt_mean_ms),
        "rtt_p95_ms": _finite(rollup.rtt_p95_ms),
        "loss_mean_pct": _finite(rollup.loss_mean_pct),
        "jitter_mean_ms": _finite(rollup.jitter_mean_ms),
    }


@endpoint(
    "GET",
    "/links/{link_id}/series",
    "getLinkSeries",
    "The link's measurements per hour or day",
    description="RTT mean and p95, loss, jitter and samples by outcome, per probe and UTC "
    "bucket, for the buckets starting in [from, to). `to` defaults to now; `from` to "
    "`range` before `to`, and `range` to 24h for hours or 30d for days. A series is one "
    "answer, not pages, so it is bounded: from `from` (or `to` - `range`) to `to` spans "
    f"at most {_HOURS_AT_MOST} days with bucket=hour and {_DAYS_AT_MOST} days with "
    "bucket=day, and `from` and `range` are not given together; either is a 400 that "
    "says so. A `to` at or before `from` answers no buckets.",
    response=ref("Series"),
    params=(
        LINK_ID,
        FROM,
        TO,
        Param(
            "range",
            {"type": "string", "pattern": DURATION_PATTERN, "maxLength": DURATION_MAX_CHARS},
            "How far back from `to`, instead of `from`: a duration more than zero, such as "
            "6h, 7d, 30d or 1h30m (units ms, s, m, h, d, w; at most three decimals); at most "
            f"{_HOURS_AT_MOST} days with bucket=hour, {_DAYS_AT_MOST} with bucket=day.",
        ),
        Param(
            "bucket",
            {"type": "string", "enum": list(BUCKETS), "default": "hour"},
            "The bucket width.",
        ),
    ),
    errors=(400, 404, *DATA),
)
async def link_series(request: web.Request, user: Account) -> Body:
    link = _visible_link(request, user)
    bucket = cast(Bucket, choice(request.query, "bucket", BUCKETS, "hour"))
    span, longest = SERIES[bucket]
    app = request.app
    now = app[CLOCK]()
    note = f" with bucket={bucket}"
    if bucket == "hour":
        note += f" (bucket=day allows {_DAYS_AT_MOST} days)"
    start, end = time_range(
        request, now, before=span, longest=longest, longest_note=note, span_param=True
    )
    intervals = {(link.id, probe.id): probe.interval for probe in link.probes}

    found = await app[READS].rollups(
        link.id, start, end, bucket, probe_intervals=intervals, now=now
    )
    return {
        "link": link.id,
        "bucket": bucket,
        "from": _iso(start),
        "to": _iso(end),
        "items": [_point(rollup) for rollup in found],
    }


# --- contracts and reports ---------------------------------------------------------------


def _terms(terms: ResolvedTerms) -> Body:
    credit = terms.credit
    rule = credit.incidents
    return {
        "target_pct": _decimal(terms.target),
        "window": terms.window,
        "fee": _decimal(terms.fee),
        "currency": terms.currency,
        "credit": {
            "step_pct": _decimal(credit.step),
            "per_step_pct": _decimal(credit.per_step),
            "rounding": credit.rounding,
            "cap_pct": _decimal(credit.cap),
            "bands": [
                {"below_pct": _decimal(b.below), "credit_pct": _decimal(b.credit)}
                for b in credit.bands
            ],
            "incidents": None
            if rule is None
            else {
                "count": rule.count,
                "min_duration_s": rule.min_duration.total_seconds(),
                "credit_pct": _decimal(rule.credit),
            },
        },
        "minimum_credit": _decimal(terms.minimum_credit),
        "unknown": terms.unknown,
        "maintenance_notice_s": terms.maintenance_notice.total_seconds(),
        "grace_s": terms.grace.total_seconds(),
        "budget_warnings_pct": list(terms.budget_warnings),
        "latency": None
        if terms.latency is None
        else {
            "p95_ms": terms.latency.p95_ms,
            "mean_ms": terms.latency.mean_ms,
            "credit_pct": _decimal(terms.latency.credit),
        },
        "loss": None
        if terms.loss is None
        else {"max_pct": terms.loss.max_pct, "credit_pct": _decimal(terms.loss.credit)},
    }


def _contract(config: Config, contract: Contract, now: datetime) -> Body:
    terms = contract.terms_at(now, config.plans)
    return {
        "id": contract.id,
        "customer": contract.customer,
        "links": list(contract.links),
        "group": contract.group,
        "plan": contract.plan,
        "effective_from": _iso(contract.effective_from),
        "terms": None if terms is None else _terms(terms),
    }


@endpoint(
    "GET",
    "/contracts",
    "listContracts",
    "Contracts and their terms in force now",
    description="The caller's contracts in id order.",
    response=ref("ContractPage"),
    params=(CUSTOMER, *PAGING),
    errors=(400, 404),
)
async def list_contracts(request: web.Request, user: Account) -> Body:
    customer = _customer_filter(request, user)
    config, now = request.app[LIVE].config, request.app[CLOCK]()
    found = request.app[LIVE].directory.visible_contracts(user, customer_id=customer)
    found.sort(key=lambda c: c.id)
    return _page(request, found, lambda c: (c.id,), lambda c: _contract(config, c, now))


@endpoint(
    "GET",
    "/reports/sla",
    "getSlaReport",
    "The SLA report of a window",
    description="Every contract measured in windows of the label's kind (weekly contracts "
    "for a week, monthly ones for a month), in contract and link order: the records "
    "`linkwatch report sla --format json` prints, the ledger's status where billing has "
    "a row.",
    response=ref("SlaRecordPage"),
    params=(
        Param("window", WINDOW.schema, WINDOW.description, required=True),
        CUSTOMER,
        *PAGING,
    ),
    errors=(400, 404, *DATA),
)
async def sla_report(request: web.Request, user: Account) -> Body:
    label = required_window_label(request)
    scope = _customer_scope(request, user)
    app = request.app
    now = app[CLOCK]()
    found: list[ContractWindow] = []
    plans: list[WindowPlan] = []
    for customer in [None] if scope is None else sorted(scope):
        plan, results = await app[READS].contract_windows(
            label, now, customer=customer, monitored=True
        )
        plans.append(plan)
        found += results
    if (problem := _unavailable(label, plans)) is not None:
        raise problem
    statuses = await app[READS].window_statuses(label) if found else {}
    records = sorted(
        (record(item, now, statuses.get((item.contract.id, item.subject.id))) for item in found),
        key=lambda r: (r["contract"], r["link"]),
    )
    return _page(request, records, lambda r: (r["contract"], r["link"]), lambda r: r)


# --- credits -----------------------------------------------------------------------------


def _ledger_key(row: LedgerRow) -> Key:
    # The ledger's own order: window, contract, subject, then an adjustment after its row.
    return (_micros(row.window_start), row.contract_id, row.subject_id, row.id)


def _require_ledger(user: Account) -> None:
    """The ledger is the billing desk's, and each customer's for their own credits; for
    anyone else it is as absent as a page their role does not have."""
    if not (can(user, "ledger") or (user.role == "customer" and user.customer is not None)):
        raise web.HTTPNotFound()


@endpoint(
    "GET",
    "/credits",
    "listCredits",
    "Ledger rows: credits by contract and window",
    description="The caller's ledger rows in window, contract and link order, an "
    "adjustment after the row it adjusts. For billing and admin (every customer) and for "
    "customers (their own); other roles get 404.",
    response=ref("CreditPage"),
    params=(WINDOW, CUSTOMER, LEDGER_STATUS, *PAGING),
    errors=(400, 404, *DATA),
)
async def list_credits(request: web.Request, user: Account) -> Body:
    _require_ledger(user)
    label = window_label(request)
    status = _one_of(request, "status", STATUSES)
    scope = _customer_scope(request, user)
    reads = request.app[READS]
    statuses = None if status is None else [s for s in STATUSES if s == status]  # typed
    rows: list[LedgerRow] = []
    if scope is None:
        rows = list(await reads.ledger_rows(window=label, status=statuses))
    for customer in sorted(scope or ()):
        rows += await reads.ledger_rows(window=label, customer=customer, status=statuses)
    rows.sort(key=_ledger_key)
    return _page(request, rows, _ledger_key, LedgerRow.record)


async def _visible_credit(request: web.Request, user: Account) -> LedgerRow:
    """The ledger row of the path, or the same 404 for a missing one and one the caller
    may not see."""
    _require_ledger(user)
    text = request.match_info["credit_id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise web.HTTPNotFound()
    wanted = int(text)
    reads = request.app[READS]
    located = await reads.locate_ledger_row(wanted)
    if located is None or not request.app[LIVE].directory.may_see_customer(user, located[1]):
        raise web.HTTPNotFound()
    # The ledger reads rows by window and customer; one such read holds this row.
    rows = await reads.ledger_rows(window=located[0], customer=located[1])
    row = next((r for r in rows if r.id == wanted), None)
    if row is None:
        raise web.HTTPNotFound()
    return row


@endpoint(
    "GET",
    "/credits/{credit_id}",
    "getCredit",
    "One ledger row",
    response=ref("Credit"),
    params=(CREDIT_ID,),
    errors=(404, *DATA),
)
async def get_credit(request: web.Request, user: Account) -> Body:
    return (await _visible_credit(request, user)).record()


async def _settleable(request: web.Request, user: Account) -> LedgerRow:
    # Only billing and admin settle; for anyone else the row is as absent as a missing one.
    if not can(user, "settle"):
        raise web.HTTPNotFound()
    return await _visible_credit(request, user)


async def _settled(request: web.Request, step: Awaitable[list[LedgerRow]]) -> Body:
    # No deadline here: a write cut short could commit after its caller was told 503.
    try:
        settled = await step
    except LedgerError as exc:
        raise PortalError(409, str(exc)) from None
    request.app[CACHE].clear()  # reports show the ledger's status: show the new one now
    return settled[0].record()


SETTLE_ERRORS = (400, 404, 409, 413, 415, *DATA)


@endpoint(
    "POST",
    "/credits/{credit_id}/approve",
    "approveCredit",
    "Approve a closed ledger row",
    description="closed -> approved, by the token's user. For billing and admin; others "
    "get 404. A row that is not closed, or one flagged for review (`needs_review`) "
    "approved without a note, is a 409 and nothing changes. The body, if any, is a JSON "
    "object with the approver's `note`.",
    response=ref("Credit"),
    params=(CREDIT_ID,),
    errors=SETTLE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "note": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_NOTE_CHARS,
                "pattern": PERSON_TEXT_PATTERN,
                "description": "What the approver checked (not only white space; no NUL "
                "character); required for a row flagged for review, kept on the row and in "
                "its audit trail.",
            }
        },
    },
)
async def approve_credit(request: web.Request, user: Account) -> Body:
    row = await _settleable(request, user)
    body = await json_object(request, fields=("note",))
    note = text_field(body, "note", most=MAX_NOTE_CHARS) if "note" in body else None
    app = request.app
    step = approve(app[DATABASE], [row.id], user.name, app[CLOCK](), note)
    return await _settled(request, step)


@endpoint(
    "POST",
    "/credits/{credit_id}/apply",
    "applyCredit",
    "Apply an approved ledger row to an invoice",
    description="approved -> applied with the invoice's reference, by the token's user. "
    "For billing and admin; others get 404. A row that is not approved is a 409 and "
    "nothing changes.",
    response=ref("Credit"),
    params=(CREDIT_ID,),
    errors=SETTLE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["invoice_ref"],
        "properties": {
            "invoice_ref": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_INVOICE_REF_CHARS,
                "pattern": PERSON_TEXT_PATTERN,
                "description": "The invoice the credit was applied to (not only white "
                "space; no NUL character).",
            }
        },
    },
    body_required=True,
)
async def apply_credit(request: web.Request, user: Account) -> Body:
    row = await _settleable(request, user)
    body = await json_object(request, fields=("invoice_ref",))
    invoice = text_field(body, "invoice_ref", most=MAX_INVOICE_REF_CHARS)
    app = request.app
    step = apply(app[DATABASE], [row.id], user.name, invoice, app[CLOCK]())
    return await _settled(request, step)


# --- maintenance -------------------------------------------------------------------------


def _maintenance(
    window: MaintenanceWindow, links: frozenset[str] | None, customer: str | None
) -> Body:
    """`links`: the caller's link ids (None: staff, who see every target)."""
    everything = not window.link_ids and not window.customer_ids
    return {
        "id": window.id,
        "description": window.description,
        "starts_at": _iso(window.starts_at),
        "ends_at": _iso(window.ends_at),
        "announced_at": _iso(window.announced_at),
        "cancelled_at": None if window.cancelled_at is None else _iso(window.cancelled_at),
        "everything": everything,
        "link_ids": [i for i in window.link_ids if links is None or i in links],
        "customer_ids": [c for c in window.customer_ids if links is None or c == customer],
    }


@endpoint(
    "GET",
    "/maintenance",
    "listMaintenance",
    "Maintenance windows concerning the caller's links",
    description="Windows overlapping [from, to) that concern a link the caller may see, "
    "in start order. `to` defaults to 90 days from now, `from` to 120 days before `to`; "
    "any span may be asked for, a page at a time. A customer sees only their own links "
    "and themselves among a window's targets.",
    response=ref("MaintenancePage"),
    params=(
        Param("link", ID, "Only windows concerning this link."),
        FROM,
        TO,
        *PAGING,
    ),
    errors=(400, 404, *DATA),
)
async def list_maintenance(request: web.Request, user: Account) -> Body:
    directory = request.app[LIVE].directory
    wanted = ident(request, "link")
    mine = directory.visible_links(user)
    links = mine
    if wanted is not None:
        link = directory.visible_link(user, wanted)
        if link is None:
            raise web.HTTPNotFound()
        links = [link]
    now = request.app[CLOCK]()
    start, end = time_range(
        request,
        now,
        before=INCIDENT_HISTORY + MAINTENANCE_AHEAD,
        after=MAINTENANCE_AHEAD,
    )
    windows: list[MaintenanceWindow] = []
    if start < end:  # a reversed range would still meet a window spanning both ends
        windows = list(await request.app[READS].maintenance(start, end))
    staff = can(user, "all_customers")
    if staff and wanted is None:
        concerned = windows  # every window, even one for links no longer configured
    else:
        concerned = [w for w in windows if any(concerns(w, x.id, x.customer) for x in links)]
    # Targets shown: every link of the caller's, whichever one the filter named.
    shown = None if staff else frozenset(link.id for link in mine)
    customer = None if staff else user.customer

    def key(window: MaintenanceWindow) -> Key:
        return (_micros(window.starts_at), window.id)

    concerned.sort(key=key)
    return _page(request, concerned, key, lambda w: _maintenance(w, shown, customer))
