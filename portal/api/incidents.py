"""Incidents staff report to customers (/incidents): reading them, grouping outages into
one, adding outages to it, and posting updates (the final one with the cause).

Everyone reads the incidents that concern their links, narrowed to those links (a
customer never learns another customer's links, nor which staff member posted); one
that concerns none of the caller's links is the 404 of one that does not exist. Only
roles with the "incidents" capability (ops, admin) write; for anyone else the writes
are that same 404. Writes go through `collector.incident_reports`; a refusal is the
400, 404 or 409 its rules give, and nothing changes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from collector.incident_reports import (
    CAUSE_CATEGORIES,
    MAX_BODY_CHARS,
    MAX_CAUSE_CHARS,
    MAX_OUTAGES,
    MAX_TITLE_CHARS,
    IncidentReport,
    IncidentReportError,
    OutageRef,
    add_outages,
    incident_report,
    incident_reports,
    open_incident,
    post_update,
)
from portal.api.endpoints import DATA, ID, PAGING, Body, endpoint, page
from portal.api.formats import iso, micros
from portal.api.openapi import Param
from portal.api.params import json_object, moment, text_field
from portal.api.patterns import MOMENT, PERSON_TEXT_PATTERN
from portal.api.schemas import ref
from portal.auth import Account
from portal.incident_views import visible_report, visible_reports
from portal.keys import CACHE, CLOCK, DATABASE, LIVE
from portal.middleware import PortalError, bad_request
from portal.scope import can

HISTORY = timedelta(days=90)
INCIDENT_ID = Param(
    "incident_id", {"type": "integer", "minimum": 1}, "The incident's id.", where="path"
)
WRITE_ERRORS = (400, 404, 409, 413, 415, *DATA)
OUTAGES: dict[str, object] = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_OUTAGES,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["link", "outage_start"],
        "properties": {
            "link": ID,
            "outage_start": {**MOMENT, "description": "The outage's start, as listed."},
        },
    },
    "description": "Outages, each named by its link and its start as "
    "/links/{link_id}/incidents lists it.",
}


def report_body(report: IncidentReport, staff: bool) -> Body:
    """`report` narrowed to the caller already."""
    return {
        "id": report.id,
        "title": report.title,
        "open": report.is_open,
        "opened_at": iso(report.opened_at),
        "opened_by": report.opened_by if staff else None,
        "closed_at": iso(report.closed_at),
        "cause_category": report.cause_category,
        "cause": report.cause,
        "outages": [
            {"link": o.link_id, "outage_start": iso(o.outage_start)} for o in report.outages
        ],
        "updates": [
            {
                "id": u.id,
                "posted_at": iso(u.posted_at),
                "posted_by": u.posted_by if staff else None,
                "body": u.body,
                "closes": u.closes,
                "links": list(u.link_ids),
            }
            for u in report.updates
        ],
    }


def _staff(user: Account) -> bool:
    return can(user, "all_customers")


@endpoint(
    "GET",
    "/incidents",
    "listIncidentReports",
    "Incidents reported on the caller's links, newest first",
    description="Incidents that are open, or were resolved or held an outage in the last "
    "90 days, concerning the caller's links, newest first; each names only the caller's "
    "links.",
    response=ref("IncidentReportPage"),
    params=PAGING,
    errors=(400, *DATA),
)
async def list_incident_reports(request: web.Request, user: Account) -> Body:
    app = request.app
    now = app[CLOCK]()
    directory = app[LIVE].directory
    links = None if _staff(user) else [link.id for link in directory.visible_links(user)]
    found: list[IncidentReport] = []
    if links is None or links:
        found = visible_reports(
            await incident_reports(app[DATABASE], since=now - HISTORY, link_ids=links),
            directory,
            user,
        )
    staff = _staff(user)
    return page(
        request,
        found,
        lambda r: (micros(r.opened_at), r.id),
        lambda r: report_body(r, staff),
        descending=True,
    )


def _wanted_id(request: web.Request) -> int:
    text = request.match_info["incident_id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise web.HTTPNotFound()
    return int(text)


@endpoint(
    "GET",
    "/incidents/{incident_id}",
    "getIncidentReport",
    "One incident, its outages and updates",
    description="As the caller may read it: only the caller's links. An incident that "
    "concerns none of them is a 404.",
    response=ref("IncidentReport"),
    params=(INCIDENT_ID,),
    errors=(404, *DATA),
)
async def get_incident_report(request: web.Request, user: Account) -> Body:
    wanted = _wanted_id(request)
    found = await incident_report(request.app[DATABASE], wanted)
    shown = None if found is None else visible_report(found, request.app[LIVE].directory, user)
    if shown is None:
        raise web.HTTPNotFound()
    return report_body(shown, _staff(user))


def _writer(user: Account) -> None:
    if not can(user, "incidents"):
        raise web.HTTPNotFound()


def _outages(body: dict[str, Any]) -> list[OutageRef]:
    value = body.get("outages")
    if not isinstance(value, list) or not value:
        raise bad_request("outages is required: a list of {link, outage_start}")
    if len(value) > MAX_OUTAGES:
        raise bad_request(f"outages has {len(value)} items; at most {MAX_OUTAGES} are allowed")
    picked = []
    for n, item in enumerate(value):
        if not isinstance(item, dict) or set(item) - {"link", "outage_start"}:
            raise bad_request(f"outages[{n}] must be an object with link and outage_start only")
        link, start = item.get("link"), item.get("outage_start")
        if not isinstance(link, str) or not link or not isinstance(start, str):
            raise bad_request(
                f"outages[{n}] needs link (a link id) and outage_start (an RFC 3339 time)"
            )
        at = moment(start, f"outages[{n}].outage_start")
        assert at is not None
        picked.append(OutageRef(link, at))
    return picked


def _known(request: web.Request, picked: list[OutageRef]) -> None:
    directory = request.app[LIVE].directory
    for outage in picked:
        if directory.link(outage.link_id) is None:
            raise PortalError(404, f"there is no link {outage.link_id[:63]!r}")


def _customers(request: web.Request) -> dict[str, str]:
    return {link.id: link.customer for link in request.app[LIVE].config.links}


@endpoint(
    "POST",
    "/incidents",
    "openIncidentReport",
    "Group outages of a shared failure into one new incident",
    description="Opens an incident over the outages (a whole PoP's links are one "
    "incident). An outage that another incident holds is a 409; one that does not exist "
    "a 404. For ops and admin; others get 404.",
    response=ref("IncidentReport"),
    errors=WRITE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "outages"],
        "properties": {
            "title": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TITLE_CHARS,
                "pattern": PERSON_TEXT_PATTERN,
                "description": "What failed, as customers read it.",
            },
            "outages": OUTAGES,
        },
    },
    body_required=True,
)
async def open_incident_report(request: web.Request, user: Account) -> Body:
    _writer(user)
    body = await json_object(request, fields=("title", "outages"))
    title = text_field(body, "title", most=MAX_TITLE_CHARS)
    picked = _outages(body)
    _known(request, picked)
    app = request.app
    try:
        report = await open_incident(
            app[DATABASE],
            picked,
            title=title,
            by=user.name,
            at=app[CLOCK](),
            customers=_customers(request),
        )
    except IncidentReportError as exc:
        raise PortalError(exc.status, str(exc)) from None
    app[CACHE].clear()
    return report_body(report, True)


@endpoint(
    "POST",
    "/incidents/{incident_id}/outages",
    "addIncidentReportOutages",
    "Add outages to an open incident",
    description="The outages join the incident; its next update names their links too. "
    "A resolved incident, or an outage another incident holds, is a 409. For ops and "
    "admin; others get 404.",
    response=ref("IncidentReport"),
    params=(INCIDENT_ID,),
    errors=WRITE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["outages"],
        "properties": {"outages": OUTAGES},
    },
    body_required=True,
)
async def add_incident_report_outages(request: web.Request, user: Account) -> Body:
    _writer(user)
    wanted = _wanted_id(request)
    body = await json_object(request, fields=("outages",))
    picked = _outages(body)
    _known(request, picked)
    app = request.app
    try:
        report = await add_outages(
            app[DATABASE],
            wanted,
            picked,
            by=user.name,
            at=app[CLOCK](),
            customers=_customers(request),
        )
    except IncidentReportError as exc:
        raise PortalError(exc.status, str(exc)) from None
    app[CACHE].clear()
    return report_body(report, True)


@endpoint(
    "POST",
    "/incidents/{incident_id}/updates",
    "postIncidentReportUpdate",
    "Post an update on an incident; with `close`, the final one with the cause",
    description="The update is stored, shown on the customers' link and home pages, and "
    "sent (`incident-update`) once per customer route concerned, naming that customer's "
    "links only, and to operations. `close` resolves the incident with its cause. A "
    "resolved incident is a 409. For ops and admin; others get 404.",
    response=ref("IncidentReport"),
    params=(INCIDENT_ID,),
    errors=WRITE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["body"],
        "properties": {
            "body": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_BODY_CHARS,
                "pattern": PERSON_TEXT_PATTERN,
                "description": "What is known, what is being done, when to expect more.",
            },
            "close": {
                "type": "object",
                "additionalProperties": False,
                "required": ["category", "cause"],
                "properties": {
                    "category": {"type": "string", "enum": list(CAUSE_CATEGORIES)},
                    "cause": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_CAUSE_CHARS,
                        "pattern": PERSON_TEXT_PATTERN,
                    },
                },
            },
        },
    },
    body_required=True,
)
async def post_incident_report_update(request: web.Request, user: Account) -> Body:
    _writer(user)
    wanted = _wanted_id(request)
    body = await json_object(request, fields=("body", "close"))
    text = text_field(body, "body", most=MAX_BODY_CHARS)
    close = None
    if body.get("close") is not None:
        given = body["close"]
        if not isinstance(given, dict) or set(given) - {"category", "cause"}:
            raise bad_request("close must be an object with category and cause only")
        category = given.get("category")
        if category not in CAUSE_CATEGORIES:
            raise bad_request(
                f"close.category must be one of {', '.join(CAUSE_CATEGORIES)}; "
                f"got {str(category)[:40]!r}"
            )
        close = (str(category), text_field(given, "cause", most=MAX_CAUSE_CHARS))
    app = request.app
    try:
        await post_update(
            app[DATABASE],
            wanted,
            text,
            by=user.name,
            at=app[CLOCK](),
            customers=_customers(request),
            close=close,
        )
    except IncidentReportError as exc:
        raise PortalError(exc.status, str(exc)) from None
    app[CACHE].clear()
    found = await incident_report(app[DATABASE], wanted)
    assert found is not None
    return report_body(found, True)
