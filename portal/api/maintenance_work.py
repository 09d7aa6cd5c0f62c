"""Maintenance windows as work (/maintenance): announce one, read one with its history,
reschedule it, cancel it, and the caller's windows as an iCalendar feed.

Everyone reads the windows that concern their links (a customer only their own, and
a window they may not see is a 404 like one that does not exist; its history, which
names staff, is for staff). Only roles with the "maintenance" capability (ops, admin)
write; for anyone else the writes are the 404 of a window that does not exist. The
announcement time is always the moment of the request: a body cannot set it. Writes go
through `collector.maintenance_work`, which keeps the window's history and the
operations trail in the same transaction; a refusal is its 400, 404 or 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from collector.maintenance_work import (
    IMPACTS,
    MAX_DESCRIPTION_CHARS,
    MAX_NOTE_CHARS,
    MAX_REFERENCE_CHARS,
    HistoryEntry,
    MaintenanceError,
    StoredWindow,
    cancel_window,
    create_window,
    reschedule_window,
    resolve_scope,
    stored_window,
    window_history,
)
from portal.api.endpoints import DATA, ID, PREFIX, Body, Endpoint, endpoint, require_token
from portal.api.formats import iso
from portal.api.maintenance import _maintenance
from portal.api.openapi import JsonSchema, Operation, Param
from portal.api.params import check_query, json_object, moment
from portal.api.patterns import MOMENT
from portal.api.schemas import ref
from portal.auth import Account
from portal.keys import CACHE, CLOCK, DATABASE, LIVE
from portal.maintenance_desk import calendar_response, feed
from portal.middleware import PortalError, bad_request
from portal.scope import can
from sla.report import concerns

MAINTENANCE_ID = Param("maintenance_id", ID, "The maintenance window's id.", where="path")
WRITE_ERRORS = (400, 404, 409, 413, 415, *DATA)
PERSON_TEXT: JsonSchema = {"type": "string", "maxLength": MAX_DESCRIPTION_CHARS}
IDS: JsonSchema = {"type": "array", "items": ID, "maxItems": 10_000}


def _refused(exc: MaintenanceError) -> PortalError:
    return PortalError(exc.status, str(exc))


def _visible(request: web.Request, user: Account, stored: StoredWindow | None) -> StoredWindow:
    """The window if the caller may see it; 404 alike for one that does not exist."""
    if stored is None:
        raise web.HTTPNotFound()
    if can(user, "all_customers"):
        return stored
    mine = request.app[LIVE].directory.visible_links(user)
    if not any(concerns(stored.window, link.id, link.customer) for link in mine):
        raise web.HTTPNotFound()
    return stored


def _change(entry: HistoryEntry) -> Body:
    return {
        "at": iso(entry.at),
        "by": entry.actor,
        "action": entry.action,
        "starts_at": iso(entry.starts_at),
        "ends_at": iso(entry.ends_at),
        "previous_starts_at": iso(entry.previous_starts_at),
        "previous_ends_at": iso(entry.previous_ends_at),
        "sequence": entry.sequence,
        "note": entry.note,
    }


async def _detail(request: web.Request, user: Account, stored: StoredWindow) -> Body:
    staff = can(user, "all_customers")
    mine = (
        None
        if staff
        else frozenset(link.id for link in request.app[LIVE].directory.visible_links(user))
    )
    window = stored.window
    now = request.app[CLOCK]()
    history = None
    if staff:
        history = [_change(e) for e in await window_history(request.app[DATABASE], window.id)]
    return {
        "window": _maintenance(window, mine, None if staff else user.customer),
        "source": stored.source,
        "editable": stored.editable and window.cancelled_at is None and window.ends_at > now,
        "history": history,
    }


def _times(body: dict[str, Any]) -> tuple[Any, Any]:
    found = []
    for name in ("starts_at", "ends_at"):
        value = body.get(name)
        if not isinstance(value, str):
            raise bad_request(f"{name} is required: an RFC 3339 time with its offset")
        found.append(moment(value, name))
    return found[0], found[1]


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = body.get(name, "")
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    if required and not value.strip():
        raise bad_request(f"{name} is required: say what the work is, customers read it")
    return value


def _ids(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise bad_request(f"{name} must be a list of ids (strings)")
    return value


def _writer(user: Account) -> None:
    if not can(user, "maintenance"):
        raise web.HTTPNotFound()


def _window_id(request: web.Request) -> str:
    return request.match_info["maintenance_id"]


@endpoint(
    "POST",
    "/maintenance",
    "announceMaintenance",
    "Announce a maintenance window",
    description="Planned work on some links (`link_ids`), all links of some customers "
    "(`customer_ids`) or `everything`: exactly one of the three. The window is announced "
    "now (`announced_at` is the moment of this request, whatever the body says), which is "
    "what each contract's notice period is counted from; the customers concerned are "
    "told at the next notification pass, with what it means for their SLA and an "
    "iCalendar (maintnote) of it. The end must be after the start and in the future; a "
    "window lasts at most 31 days. For ops and admin; others get 404.",
    response=ref("MaintenanceDetail"),
    errors=WRITE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["starts_at", "ends_at", "description"],
        "properties": {
            "link_ids": {**IDS, "description": "The links the work is on."},
            "customer_ids": {**IDS, "description": "Customers all of whose links it is on."},
            "everything": {"type": "boolean", "description": "The work is on every link."},
            "starts_at": {**MOMENT, "description": "When the work starts."},
            "ends_at": {**MOMENT, "description": "When it ends, after the start."},
            "description": {**PERSON_TEXT, "minLength": 1, "description": "What and why."},
            "reference": {
                "type": "string",
                "maxLength": MAX_REFERENCE_CHARS,
                "description": "A ticket or change number, one line.",
            },
            "impact": {"type": "string", "enum": list(IMPACTS), "default": "OUTAGE"},
        },
    },
    body_required=True,
)
async def announce(request: web.Request, user: Account) -> Body:
    _writer(user)
    fields = (
        "link_ids",
        "customer_ids",
        "everything",
        "starts_at",
        "ends_at",
        "description",
        "reference",
        "impact",
    )
    body = await json_object(request, fields=fields)
    everything = body.get("everything", False)
    if not isinstance(everything, bool):
        raise bad_request("everything must be true or false")
    impact = body.get("impact", "OUTAGE")
    if not isinstance(impact, str):
        raise bad_request(f"impact must be one of {', '.join(IMPACTS)}")
    starts_at, ends_at = _times(body)
    app = request.app
    try:
        scope = resolve_scope(
            app[LIVE].config,
            link_ids=_ids(body, "link_ids"),
            customer_ids=_ids(body, "customer_ids"),
            everything=everything,
        )
        window = await create_window(
            app[DATABASE],
            scope,
            starts_at=starts_at,
            ends_at=ends_at,
            description=_text(body, "description", required=True),
            reference=_text(body, "reference"),
            impact=impact,
            by=user.name,
            now=app[CLOCK](),
        )
    except MaintenanceError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return await _detail(request, user, StoredWindow(window, "portal"))


@endpoint(
    "GET",
    "/maintenance/{maintenance_id}",
    "getMaintenance",
    "A maintenance window, where it came from and what was done to it",
    description="Staff also read its history: created, rescheduled (from what to what), "
    "cancelled, by whom and when. A customer sees a window that concerns one of their "
    "links, naming only their own links; any other is a 404.",
    response=ref("MaintenanceDetail"),
    params=(MAINTENANCE_ID,),
    errors=(404, *DATA),
)
async def get_maintenance(request: web.Request, user: Account) -> Body:
    stored = await stored_window(request.app[DATABASE], _window_id(request))
    return await _detail(request, user, _visible(request, user, stored))


@endpoint(
    "POST",
    "/maintenance/{maintenance_id}/reschedule",
    "rescheduleMaintenance",
    "Move a maintenance window that has not begun",
    description="New times are a new announcement, made now: the notice period counts "
    "from this request, so work moved at short notice may count as normal time for a "
    "contract (the announcement each customer receives says so). Its sequence goes up. "
    "Work under way, ended or cancelled is a 409 (cancel stops work under way); a "
    "window declared in the config file is a 409 too: change it there. For ops and "
    "admin; others get 404.",
    response=ref("MaintenanceDetail"),
    params=(MAINTENANCE_ID,),
    errors=WRITE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["starts_at", "ends_at"],
        "properties": {
            "starts_at": {**MOMENT, "description": "The new start."},
            "ends_at": {**MOMENT, "description": "The new end, after the start."},
            "note": {"type": "string", "maxLength": MAX_NOTE_CHARS, "description": "Why."},
        },
    },
    body_required=True,
)
async def reschedule(request: web.Request, user: Account) -> Body:
    _writer(user)
    body = await json_object(request, fields=("starts_at", "ends_at", "note"))
    starts_at, ends_at = _times(body)
    app = request.app
    try:
        window = await reschedule_window(
            app[DATABASE],
            _window_id(request),
            starts_at=starts_at,
            ends_at=ends_at,
            by=user.name,
            now=app[CLOCK](),
            note=_text(body, "note"),
            config=app[LIVE].config,
        )
    except MaintenanceError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return await _detail(request, user, StoredWindow(window, "portal"))


@endpoint(
    "POST",
    "/maintenance/{maintenance_id}/cancel",
    "cancelMaintenance",
    "Cancel a maintenance window",
    description="Work not begun is withdrawn (it covers nothing); work under way stops "
    "now (the time from now counts normally). Whoever was told of it gets a "
    "maintenance-cancelled notice. Ended or already cancelled work is a 409, and so is "
    "a window declared in the config file: remove it there. For ops and admin; others "
    "get 404.",
    response=ref("MaintenanceDetail"),
    params=(MAINTENANCE_ID,),
    errors=WRITE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "note": {"type": "string", "maxLength": MAX_NOTE_CHARS, "description": "Why."},
        },
    },
)
async def cancel(request: web.Request, user: Account) -> Body:
    _writer(user)
    body = await json_object(request, fields=("note",))
    app = request.app
    try:
        window = await cancel_window(
            app[DATABASE],
            _window_id(request),
            by=user.name,
            now=app[CLOCK](),
            note=_text(body, "note"),
            config=app[LIVE].config,
        )
    except MaintenanceError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return await _detail(request, user, StoredWindow(window, "portal"))


# --- the iCalendar feed -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalendarOperation(Operation):
    """An operation whose 200 answer is an iCalendar document, not JSON."""

    def spec(self) -> JsonSchema:
        out = Operation.spec(self)
        out["responses"]["200"] = {
            "description": "OK",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        }
        return out


FEED_OPERATION = CalendarOperation(
    method="GET",
    path=PREFIX + "/maintenance.ics",
    operation_id="maintenanceCalendar",
    summary="The caller's maintenance windows as an iCalendar feed",
    description="For calendar clients: every window of the last 90 days and the next 400 "
    "that concerns the caller's links (a customer only their own), one VEVENT each in "
    "the BCOP maintnote form (X-MAINTNOTE-* properties), with a UID stable per window "
    "and a SEQUENCE that grows with each reschedule; cancelled work is STATUS:CANCELLED.",
    response={"type": "string"},
    errors=DATA,
)


async def _feed(request: web.Request) -> web.Response:
    user = require_token(request).user
    check_query(request, FEED_OPERATION)
    return calendar_response(await feed(request, user))


maintenance_calendar = Endpoint(FEED_OPERATION, _feed)
