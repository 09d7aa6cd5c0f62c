"""Outage acknowledgements (/links/{link_id}/outages/{start}/ack, /links/{link_id}/
acknowledgements) and the monthly operations report (/reports/operations).

Acknowledging is for roles with the "acknowledge" capability (ops, admin); reading who
acknowledged what is for staff. For anyone else every one of these is the 404 of a link
or report that does not exist: acknowledgements carry staff's notes, not the customer's
business. An outage is named by its link and its confirmed start, as
/links/{link_id}/incidents lists it; a second acknowledgement is a 409 naming the first.
"""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

from aiohttp import web

from collector.acknowledgements import (
    MAX_NOTE_CHARS,
    Acknowledgement,
    AcknowledgementError,
    acknowledge,
)
from portal.api.access import visible_link
from portal.api.endpoints import DATA, FROM, LINK_ID, PAGING, TO, Body, endpoint, page
from portal.api.formats import iso, micros
from portal.api.openapi import Param
from portal.api.params import json_object, moment, time_range
from portal.api.patterns import DATE_TIME_PATTERN
from portal.api.schemas import ref
from portal.auth import Account
from portal.keys import CACHE, CLOCK, DATABASE, LIVE, READS
from portal.middleware import PortalError, bad_request
from portal.pages.common import month_label
from portal.scope import Capability, can
from sla.compute import seconds
from sla.operations import UTC_ZONE, OperationsReport, Summary, exact_seconds, started
from sla.windows import window_containing

HISTORY = timedelta(days=90)
_US = timedelta(microseconds=1)
START = Param(
    "start",
    {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN},
    "The outage's confirmed start, as /links/{link_id}/incidents lists it (RFC 3339).",
    where="path",
)
MONTH = Param(
    "month",
    {"type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$"},
    "A calendar month, UTC (2026-11); default the current one.",
)


def acknowledgement_body(found: Acknowledgement) -> Body:
    return {
        "link": found.link_id,
        "outage_start": iso(found.outage_start),
        "acknowledged_by": found.by,
        "acknowledged_at": iso(found.at),
        "note": found.note,
        "tta_s": seconds(found.after_start // _US),
    }


def _staff(request: web.Request, user: Account, capability: Capability) -> str:
    if not can(user, capability):
        raise web.HTTPNotFound()
    return visible_link(request, user).id


@endpoint(
    "POST",
    "/links/{link_id}/outages/{start}/ack",
    "acknowledgeOutage",
    "Acknowledge an outage of the link",
    description="Says someone is on the outage (running or over): who (the token's "
    "user), when (now) and an optional note. Escalation stops, and the time to "
    "acknowledge counts from the outage's confirmed start. An outage is acknowledged "
    "once: a second time is a 409 naming who did it and when. No such outage is a 404. "
    "For ops and admin; others get 404.",
    response=ref("Acknowledgement"),
    params=(LINK_ID, START),
    errors=(400, 404, 409, 413, 415, *DATA),
    body={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "note": {
                "type": "string",
                "maxLength": MAX_NOTE_CHARS,
                "description": "What is being done (crew dispatched, ...); kept as written.",
            }
        },
    },
)
async def acknowledge_outage(request: web.Request, user: Account) -> Body:
    link_id = _staff(request, user, "acknowledge")
    start = moment(request.match_info["start"], "start")
    assert start is not None
    body = await json_object(request, fields=("note",))
    note = body.get("note", "")
    if not isinstance(note, str):
        raise bad_request("note must be a string")
    app = request.app
    link = app[LIVE].directory.link(link_id)
    try:
        done = await acknowledge(
            app[DATABASE],
            link_id,
            start,
            by=user.name,
            at=app[CLOCK](),
            note=note,
            customer_id=link.customer if link is not None else None,
        )
    except AcknowledgementError as exc:
        raise PortalError(exc.status, str(exc)) from None
    app[CACHE].clear()
    return acknowledgement_body(done)


@endpoint(
    "GET",
    "/links/{link_id}/acknowledgements",
    "listLinkAcknowledgements",
    "The acknowledgements of the link's outages, newest outage first",
    description="Of the outages that began in [from, to); `to` defaults to now and "
    "`from` to 90 days before `to`. For staff; customers get 404.",
    response=ref("AcknowledgementPage"),
    params=(LINK_ID, FROM, TO, *PAGING),
    errors=(400, 404, *DATA),
)
async def list_acknowledgements(request: web.Request, user: Account) -> Body:
    link_id = _staff(request, user, "all_customers")
    now = request.app[CLOCK]()
    start, end = time_range(request, now, before=HISTORY)
    found: list[Acknowledgement] = []
    if start < end:
        found = list(await request.app[READS].acknowledgements([link_id], start, end))
    found.sort(key=lambda a: a.outage_start, reverse=True)
    return page(
        request, found, lambda a: (micros(a.outage_start),), acknowledgement_body, descending=True
    )


def _summary(s: Summary) -> Body:
    return {
        "name": s.name,
        "customer": s.customer_id,
        "objective_s": None if s.objective is None else seconds(s.objective // _US),
        "outages": s.outages,
        "acknowledged": s.acknowledged,
        "never_acknowledged": s.never_acknowledged,
        "with_objective": s.with_objective,
        "within_objective": s.within_objective,
        "running": s.running,
        "tta_median_s": exact_seconds(s.tta.median),
        "tta_p90_s": exact_seconds(s.tta.p90),
        "tta_worst_s": exact_seconds(s.tta.worst),
        "ttr_median_s": exact_seconds(s.ttr.median),
        "ttr_p90_s": exact_seconds(s.ttr.p90),
        "ttr_worst_s": exact_seconds(s.ttr.worst),
    }


def report_body(found: OperationsReport) -> Body:
    return {
        "month": found.month.label,
        "contracts": [_summary(s) for s in found.contracts],
        "overall": _summary(found.overall),
        "outages": [
            {
                "link": r.link_id,
                "start": started(r),
                "end": iso(r.end),
                "acknowledged_by": None if r.acknowledgement is None else r.acknowledgement.by,
                "tta_s": exact_seconds(None if r.tta_us is None else Fraction(r.tta_us)),
                "ttr_s": exact_seconds(None if r.ttr_us is None else Fraction(r.ttr_us)),
            }
            for r in found.outages
        ],
    }


@endpoint(
    "GET",
    "/reports/operations",
    "operationsReport",
    "How fast outages were acknowledged and restored in a month",
    description="Per contract and overall, over the outages that began in the month "
    "(UTC): counts, median, p90 and worst time to acknowledge (TTA) and to restore "
    "(TTR) as exact decimal seconds, and how many were acknowledged within the "
    'contract\'s objective. "never": the figure falls on an outage never acknowledged; '
    "null: no outage to measure. For ops and admin; others get 404.",
    response=ref("OperationsReport"),
    params=(MONTH,),
    errors=(400, 404, *DATA),
)
async def operations_report(request: web.Request, user: Account) -> Body:
    if not can(user, "noc"):
        raise web.HTTPNotFound()
    app = request.app
    now = app[CLOCK]()
    label = month_label(request.query.get("month"))
    if label is None:
        label = window_containing("month", UTC_ZONE, now).label
    return report_body(await app[READS].operations_report(app[LIVE].config, label, now))
