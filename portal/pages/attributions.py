"""The NOC's forms on the link page: attribute (part of) an outage to the customer, and
withdraw an attribution.

Only roles with the "attribute" capability (ops, admin) reach them; for anyone else they
are the 404 of a page that does not exist. Each form carries the session's CSRF token
(checked by the session middleware). The work is `sla.attributions`': it stores the
attribution and brings the ledger in line; a refusal (outside the outage, overlapping
another, withdrawn already) is answered with what to change, and nothing is stored.
"""

from __future__ import annotations

from aiohttp import web

from collector.attributions import AttributionError
from portal.keys import CACHE, CLOCK, DATABASE, LIVE
from portal.middleware import PortalError, read_form
from portal.pages.common import digits_only, redirect, require, timestamp, visible_link
from sla.attributions import attribute_outage, withdraw_attribution

routes = web.RouteTableDef()


def _back(link_id: str, done: str) -> web.Response:
    return redirect(f"/links/{link_id}?done={done}#attributions-heading")


@routes.post("/links/{link_id}/attributions")
async def attribute(request: web.Request) -> web.Response:
    viewer = require(request, "attribute")
    link = visible_link(request, viewer)
    form = await read_form(request)
    outage_start = timestamp(form.get("outage_start"), "outage_start")
    if outage_start is None:
        raise PortalError(400, "outage_start is required: the start of the outage, as listed")
    app = request.app
    try:
        await attribute_outage(
            app[DATABASE],
            app[LIVE].config,
            link.id,
            outage_start,
            reason=form.get("reason", ""),
            by=viewer.user.name,
            now=app[CLOCK](),
            starts_at=timestamp(form.get("starts_at"), "starts_at"),
            ends_at=timestamp(form.get("ends_at"), "ends_at"),
        )
    except AttributionError as exc:
        raise PortalError(exc.status, str(exc)) from None
    app[CACHE].clear()  # the link page, reports and credits show the new figures now
    return _back(link.id, "attributed")


def attribution_id(request: web.Request) -> int:
    text = request.match_info["attribution_id"]
    if not digits_only(text) or len(text) > 18:
        raise web.HTTPNotFound()
    return int(text)


@routes.post("/links/{link_id}/attributions/{attribution_id}/withdraw")
async def withdraw(request: web.Request) -> web.Response:
    viewer = require(request, "attribute")
    link = visible_link(request, viewer)
    wanted = attribution_id(request)
    form = await read_form(request)
    app = request.app
    try:
        await withdraw_attribution(
            app[DATABASE],
            app[LIVE].config,
            link.id,
            wanted,
            reason=form.get("reason", ""),
            by=viewer.user.name,
            now=app[CLOCK](),
        )
    except AttributionError as exc:
        raise PortalError(exc.status, str(exc)) from None
    app[CACHE].clear()
    return _back(link.id, "withdrawn")
