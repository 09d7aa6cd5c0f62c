"""Recurring maintenance (/maintenance/series): listing the series with their next
occurrences, creating one, skipping one occurrence, cancelling a series.

For roles with the "maintenance" capability (ops, admin) only; for anyone else every
call is the 404 of a path that does not exist (customers read each announced occurrence
as a maintenance window, /maintenance). A series is held to the config's rules
(`portal.recurring_views.series_from`); each action is `collector.recurring`'s, with
its entry in the operations trail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from collector.recurring import (
    SeriesError,
    all_series,
    announce_due,
    announced_occurrences,
    cancel_series,
    create_series,
    skip_occurrence,
)
from kernel.config.recurring import MAX_DURATION
from kernel.durations import format_duration
from kernel.recurrence import MaintenanceSeries
from portal.api.endpoints import DATA, Body, endpoint
from portal.api.formats import iso
from portal.api.openapi import Param
from portal.api.params import json_object, moment
from portal.api.patterns import ID_PATTERN, MOMENT
from portal.api.schemas import (
    BOOLEAN,
    STRING,
    TIME,
    array,
    closed,
    nullable,
    ref,
)
from portal.auth import Account
from portal.keys import CACHE, CLOCK, DATABASE, LIVE
from portal.middleware import PortalError, bad_request
from portal.recurring_views import FIELDS, SeriesView, series_from, series_view
from portal.scope import can

SERIES_ID = Param(
    "series_id", {"type": "string", "pattern": ID_PATTERN}, "The series' id.", where="path"
)
WRITE_ERRORS = (400, 404, 409, 413, 415, *DATA)
TEXT: dict[str, object] = {"type": "string", "maxLength": 500}

SERIES_SCHEMAS: dict[str, Any] = {
    "MaintenanceOccurrence": closed(
        "One occurrence of a series: announced (a maintenance window with this id), "
        "announced late (after its lead time: the SLA judges the notice it had), to be "
        "announced at `announce_at`, or withdrawn (skipped after its announcement).",
        id=STRING,
        starts_at=TIME,
        ends_at=TIME,
        announce_at=TIME,
        state={
            "type": "string",
            "enum": ["announced", "announced late", "to be announced", "withdrawn"],
        },
    ),
    "MaintenanceSeries": closed(
        "Recurring maintenance: an RFC 5545 RRULE from a local start in a time zone.",
        id=STRING,
        description=STRING,
        reference=STRING,
        everything=BOOLEAN,
        link_ids=array(STRING),
        customer_ids=array(STRING),
        start={**STRING, "description": "The local wall time the rule runs from."},
        timezone=STRING,
        duration=STRING,
        rrule=STRING,
        announce={**STRING, "description": "How long before each start it is announced."},
        source={"type": "string", "enum": ["config", "portal"]},
        created_by=STRING,
        cancelled_at=nullable(TIME),
        skipped=array(TIME),
        upcoming=array(ref("MaintenanceOccurrence")),
    ),
    "MaintenanceSeriesList": closed(
        "Every series, in id order.", items=array(ref("MaintenanceSeries"))
    ),
}


def _staff(user: Account) -> None:
    if not can(user, "maintenance"):
        raise web.HTTPNotFound()


def series_body(view: SeriesView) -> Body:
    s = view.series
    return {
        "id": s.id,
        "description": s.description,
        "reference": s.reference,
        "everything": s.everything,
        "link_ids": list(s.link_ids),
        "customer_ids": list(s.customer_ids),
        "start": s.start.isoformat(timespec="minutes"),
        "timezone": s.zone,
        "duration": format_duration(s.duration),
        "rrule": s.rule,
        "announce": format_duration(s.lead),
        "source": s.source,
        "created_by": s.created_by,
        "cancelled_at": iso(s.cancelled_at),
        "skipped": [iso(at) for at in view.skipped],
        "upcoming": [
            {
                "id": o.id,
                "starts_at": iso(o.starts_at),
                "ends_at": iso(o.ends_at),
                "announce_at": iso(o.announce_at),
                "state": o.state,
            }
            for o in view.upcoming
        ],
    }


async def _view(request: web.Request, series: MaintenanceSeries, now: datetime) -> SeriesView:
    announced = await announced_occurrences(request.app[DATABASE], now - MAX_DURATION)
    return series_view(series, announced.get(series.id, []), now)


async def _find(request: web.Request) -> MaintenanceSeries:
    wanted = request.match_info["series_id"]
    for series in await all_series(request.app[DATABASE]):
        if series.id == wanted:
            return series
    raise web.HTTPNotFound()


def _refused(exc: SeriesError) -> PortalError:
    return PortalError(exc.status, str(exc))


@endpoint(
    "GET",
    "/maintenance/series",
    "listMaintenanceSeries",
    "Recurring maintenance series and their next occurrences",
    description="Every series (cancelled ones too), each with its next occurrences and "
    "whether each is announced yet. For ops and admin; others get 404.",
    response=ref("MaintenanceSeriesList"),
    errors=(404, *DATA),
)
async def list_series(request: web.Request, user: Account) -> Body:
    _staff(user)
    now = request.app[CLOCK]()
    db = request.app[DATABASE]
    announced = await announced_occurrences(db, now - MAX_DURATION)
    return {
        "items": [
            series_body(series_view(s, announced.get(s.id, []), now)) for s in await all_series(db)
        ]
    }


@endpoint(
    "POST",
    "/maintenance/series",
    "createMaintenanceSeries",
    "Create a recurring maintenance series",
    description="Held to the rules of the config's `recurring`: an RRULE (FREQ DAILY, "
    "WEEKLY, MONTHLY or YEARLY; COUNT or UNTIL in UTC), a local `start` without offset in "
    "`timezone`, a `duration` above zero, occurrences that do not overlap, `announce` "
    "(default 14d). Say what it covers: `links`, `customers`, or `everything` true. Each "
    "occurrence is announced at its start minus `announce`; one due already is announced "
    "now. A taken id is a 409. For ops and admin; others get 404.",
    response=ref("MaintenanceSeries"),
    errors=WRITE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "start", "duration", "rrule"],
        "properties": {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "description": TEXT,
            "reference": {"type": "string", "maxLength": 200},
            "links": {"type": "array", "items": {"type": "string", "pattern": ID_PATTERN}},
            "customers": {"type": "array", "items": {"type": "string", "pattern": ID_PATTERN}},
            "everything": BOOLEAN,
            "start": {"type": "string", "description": "Local wall time: 2027-01-05T02:00."},
            "timezone": {"type": "string", "description": "An IANA zone; default UTC."},
            "duration": {"type": "string", "description": "Such as 2h."},
            "rrule": {"type": "string", "maxLength": 500, "description": "FREQ=MONTHLY;BYDAY=1TU"},
            "announce": {"type": "string", "description": "Such as 7d; default 14d."},
        },
    },
    body_required=True,
)
async def create(request: web.Request, user: Account) -> Body:
    _staff(user)
    body = await json_object(request, fields=FIELDS)
    for name in ("links", "customers"):
        value = body.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad_request(f"{name} must be a list of ids")
    for name in set(FIELDS) - {"links", "customers", "everything"}:
        if name in body and not isinstance(body[name], str):
            raise bad_request(f"{name} must be a string")
    if "everything" in body and not isinstance(body["everything"], bool):
        raise bad_request("everything must be true or false")
    app = request.app
    series = series_from(body, app[LIVE].config, user.name)
    now = app[CLOCK]()
    try:
        await create_series(app[DATABASE], series, now=now)
    except SeriesError as exc:
        raise _refused(exc) from None
    await announce_due(app[DATABASE], now)
    app[CACHE].clear()
    return series_body(await _view(request, series, now))


@endpoint(
    "POST",
    "/maintenance/series/{series_id}/skip",
    "skipMaintenanceOccurrence",
    "Skip one occurrence of a series",
    description="`starts_at` names the occurrence by its start, as `upcoming` lists it. "
    "Not announced yet: it never will be. Announced: its window is withdrawn now, and the "
    "customers told. A time that is no occurrence is a 400; one over or skipped already a "
    "409. For ops and admin; others get 404.",
    response=ref("MaintenanceSeries"),
    params=(SERIES_ID,),
    errors=WRITE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["starts_at"],
        "properties": {"starts_at": MOMENT, "reason": TEXT},
    },
    body_required=True,
)
async def skip(request: web.Request, user: Account) -> Body:
    _staff(user)
    series = await _find(request)
    body = await json_object(request, fields=("starts_at", "reason"))
    text, reason = body.get("starts_at"), body.get("reason", "")
    if not isinstance(text, str):
        raise bad_request("starts_at is required: the occurrence's start, as listed")
    if not isinstance(reason, str):
        raise bad_request("reason must be a string")
    start = moment(text, "starts_at")
    assert start is not None
    app = request.app
    now = app[CLOCK]()
    try:
        await skip_occurrence(
            app[DATABASE], series, start, by=user.name, reason=reason[:500], now=now
        )
    except SeriesError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return series_body(await _view(request, await _find(request), now))


@endpoint(
    "POST",
    "/maintenance/series/{series_id}/cancel",
    "cancelMaintenanceSeries",
    "Cancel a series: no further occurrence is announced",
    description="Occurrences announced already stay in force; skip them one by one to "
    "withdraw them. One cancelled already is a 409. For ops and admin; others get 404.",
    response=ref("MaintenanceSeries"),
    params=(SERIES_ID,),
    errors=WRITE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "properties": {"reason": TEXT},
    },
)
async def cancel(request: web.Request, user: Account) -> Body:
    _staff(user)
    series = await _find(request)
    body = await json_object(request, fields=("reason",))
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise bad_request("reason must be a string")
    app = request.app
    now = app[CLOCK]()
    try:
        await cancel_series(app[DATABASE], series.id, by=user.name, reason=reason[:500], now=now)
    except SeriesError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return series_body(await _view(request, await _find(request), now))
