"""Outage time attributed to the customer (/links/{link_id}/attributions): listing the
link's attributions (withdrawn ones too, which stay on record), attributing (part of)
an outage, and withdrawing an attribution.

Everyone who may see the link reads its attributions (a customer only their own links');
only roles with the "attribute" capability (ops, admin) write, and for anyone else the
writes are the 404 of a link that does not exist. Writes go through `sla.attributions`,
which brings the ledger in line at once; a refusal is the 400, 404 or 409 its rules give,
and nothing changes.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from collector.attributions import MAX_REASON_CHARS, Attribution, AttributionError
from portal.api.access import visible_link
from portal.api.endpoints import DATA, FROM, LINK_ID, PAGING, TO, Body, endpoint, page
from portal.api.formats import iso, micros
from portal.api.openapi import Param
from portal.api.params import json_object, moment, text_field, time_range
from portal.api.patterns import MOMENT, PERSON_TEXT_PATTERN
from portal.api.schemas import ref
from portal.auth import Account
from portal.keys import CACHE, CLOCK, DATABASE, LIVE, READS
from portal.middleware import PortalError, bad_request
from portal.scope import can
from sla.attributions import attribute_outage, withdraw_attribution
from sla.compute import seconds

HISTORY = timedelta(days=90)
ATTRIBUTION_ID = Param(
    "attribution_id",
    {"type": "integer", "minimum": 1},
    "The attribution's id.",
    where="path",
)
WRITE_ERRORS = (400, 404, 409, 413, 415, *DATA)
REASON: dict[str, object] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_REASON_CHARS,
    "pattern": PERSON_TEXT_PATTERN,
}


def attribution_body(found: Attribution) -> Body:
    return {
        "id": found.id,
        "link": found.link_id,
        "outage_start": iso(found.outage_start),
        "starts_at": iso(found.starts_at),
        "ends_at": iso(found.ends_at),
        "duration_s": seconds((found.ends_at - found.starts_at) // timedelta(microseconds=1)),
        "reason": found.reason,
        "created_by": found.created_by,
        "created_at": iso(found.created_at),
        "in_force": found.in_force,
        "withdrawn_by": found.withdrawn_by,
        "withdrawn_at": iso(found.withdrawn_at),
        "withdrawn_reason": found.withdrawn_reason,
    }


@endpoint(
    "GET",
    "/links/{link_id}/attributions",
    "listLinkAttributions",
    "Outage time of the link attributed to the customer, newest first",
    description="Attributions overlapping [from, to), newest first, withdrawn ones too "
    "(`in_force` false, with who withdrew it, when and why). `to` defaults to now and "
    "`from` to 90 days before `to`.",
    response=ref("AttributionPage"),
    params=(LINK_ID, FROM, TO, *PAGING),
    errors=(400, 404, *DATA),
)
async def list_attributions(request: web.Request, user: Account) -> Body:
    link = visible_link(request, user)
    now = request.app[CLOCK]()
    start, end = time_range(request, now, before=HISTORY)
    found: list[Attribution] = []
    if start < end:
        found = list(await request.app[READS].attributions([link.id], start, end))
    found.sort(key=lambda a: (a.starts_at, a.id), reverse=True)
    return page(
        request, found, lambda a: (micros(a.starts_at), a.id), attribution_body, descending=True
    )


def _writer(request: web.Request, user: Account) -> str:
    """The link a write names, for those who may attribute; 404 for anyone else."""
    if not can(user, "attribute"):
        raise web.HTTPNotFound()
    return visible_link(request, user).id


def _refused(exc: AttributionError) -> PortalError:
    return PortalError(exc.status, str(exc))


@endpoint(
    "POST",
    "/links/{link_id}/attributions",
    "attributeOutage",
    "Attribute (part of) an outage to the customer",
    description="The outage is named by its start, as /links/{link_id}/incidents lists "
    "it; `starts_at` and `ends_at` (default: the outage's own) must lie inside it, and a "
    "running outage needs an end no later than now. Overlapping an attribution in force "
    "is a 409. The ledger follows at once: open and closed rows take the new figures, a "
    "settled row gets an adjustment awaiting approval. For ops and admin; others get 404.",
    response=ref("Attribution"),
    params=(LINK_ID,),
    errors=WRITE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["outage_start", "reason"],
        "properties": {
            "outage_start": {**MOMENT, "description": "The start of the outage."},
            "starts_at": {**MOMENT, "description": "From when; default the outage's start."},
            "ends_at": {**MOMENT, "description": "Until when; default the outage's end."},
            "reason": {
                **REASON,
                "description": "Why the customer caused it (CPE powered off, their own "
                "maintenance, ...): shown to the customer and kept in the audit trail.",
            },
        },
    },
    body_required=True,
)
async def attribute(request: web.Request, user: Account) -> Body:
    link_id = _writer(request, user)
    body = await json_object(request, fields=("outage_start", "starts_at", "ends_at", "reason"))
    reason = text_field(body, "reason", most=MAX_REASON_CHARS)
    times = {}
    for name in ("outage_start", "starts_at", "ends_at"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise bad_request(f"{name} must be a string: an RFC 3339 time with its offset")
        times[name] = moment(value, name)
    outage_start = times["outage_start"]
    if outage_start is None:
        raise bad_request("outage_start is required: the start of the outage, as listed")
    app = request.app
    try:
        change = await attribute_outage(
            app[DATABASE],
            app[LIVE].config,
            link_id,
            outage_start,
            reason=reason,
            by=user.name,
            now=app[CLOCK](),
            starts_at=times["starts_at"],
            ends_at=times["ends_at"],
        )
    except AttributionError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return attribution_body(change.attribution)


@endpoint(
    "POST",
    "/links/{link_id}/attributions/{attribution_id}/withdraw",
    "withdrawAttribution",
    "Withdraw an attribution (a disputed one)",
    description="The attribution stays on record with who withdrew it, when and why; its "
    "time counts as an outage again, and the ledger follows at once (a settled row gets "
    "an adjustment awaiting approval). One already withdrawn is a 409. For ops and admin; "
    "others get 404.",
    response=ref("Attribution"),
    params=(LINK_ID, ATTRIBUTION_ID),
    errors=WRITE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["reason"],
        "properties": {"reason": {**REASON, "description": "Why it is withdrawn; kept on record."}},
    },
    body_required=True,
)
async def withdraw(request: web.Request, user: Account) -> Body:
    link_id = _writer(request, user)
    text = request.match_info["attribution_id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise web.HTTPNotFound()
    body = await json_object(request, fields=("reason",))
    reason = text_field(body, "reason", most=MAX_REASON_CHARS)
    app = request.app
    try:
        change = await withdraw_attribution(
            app[DATABASE],
            app[LIVE].config,
            link_id,
            int(text),
            reason=reason,
            by=user.name,
            now=app[CLOCK](),
        )
    except AttributionError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return attribution_body(change.attribution)
