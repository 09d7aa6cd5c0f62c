"""Operations' view of the notifications: what was sent, held back, or could not be
delivered and why, with a retry for a failed one. Customers never reach it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from notify import status
from portal.formatting import moment
from portal.keys import CACHE, CLOCK, DATABASE, LIVE, READS
from portal.middleware import bad_request
from portal.pages.common import redirect, require
from portal.params import choice
from portal.rendering import render

routes = web.RouteTableDef()
SHOWN = 200
UTC = ZoneInfo("UTC")  # staff pages read in UTC


@routes.get("/noc/notifications")
async def notifications_page(request: web.Request) -> web.Response:
    viewer = require(request, "noc")
    app = request.app
    reads = app[READS]
    found = await reads.delivery_counts()
    default = "failed" if found["failed"] else "all"
    shown = choice(request.query, "status", ("all", *status.STATUSES), default)
    rows = await reads.recent_deliveries(None if shown == "all" else [shown], SHOWN)
    now = app[CLOCK]()
    directory = app[LIVE].directory
    names = {c.id: c.name for c in directory.visible_customers(viewer.user)}
    config = app[LIVE].config
    channels = {c.id: c.kind for c in config.notifications.channels}
    return render(
        request,
        "noc_notifications.html",
        {
            "counts": found,
            "shown": shown,
            "rows": [
                {
                    "row": row,
                    "customer": names.get(row.customer_id or "", row.customer_id),
                    "channel_kind": channels.get(row.channel_id, "removed"),
                    "occurred": moment(row.occurred_at, now, UTC),
                    "updated": moment(row.updated_at, now, UTC),
                    "next": moment(row.next_attempt_at, now, UTC),
                }
                for row in rows
            ],
            "limit": SHOWN,
            "configured": bool(config.notifications.routes),
        },
    )


@routes.post("/noc/notifications/retry")
async def retry_delivery(request: web.Request) -> web.Response:
    require(request, "noc")
    form = await request.post()
    event_id, route_id = form.get("event_id"), form.get("route_id")
    if not isinstance(event_id, str) or not isinstance(route_id, str) or not event_id:
        raise bad_request("event_id and route_id are required")
    app = request.app
    await status.retry(app[DATABASE], event_id, route_id, app[CLOCK]())
    app[CACHE].clear()  # the page shows the delivery's new status at once
    return redirect("/noc/notifications?status=pending")
