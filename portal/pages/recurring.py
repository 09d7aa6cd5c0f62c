"""Operations' page of recurring maintenance (/noc/maintenance/series): every series with
its rule and next occurrences (announced, or when they will be), a form to create one,
and, per series, skipping one occurrence and cancelling the series.

Only roles with the "maintenance" capability (ops, admin) reach it; for anyone else it
is the 404 of a page that does not exist. Every form carries the session's CSRF token.
Each action is `collector.recurring`'s, with its entry in the operations trail; a
refusal says what to change, and nothing is stored. Times read in UTC, as everywhere for
staff, with each occurrence's local time in its series' zone beside it.
"""

from __future__ import annotations

from datetime import UTC
from functools import partial

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
from kernel.recurrence import MaintenanceSeries
from portal.formatting import moment
from portal.keys import CACHE, CLOCK, DATABASE, LIVE
from portal.middleware import PortalError, read_form
from portal.pages.common import redirect, require, timestamp
from portal.recurring_views import series_from, series_view
from portal.rendering import render

routes = web.RouteTableDef()

PAGE = "/noc/maintenance/series"
DONE = {
    "created": "The series is stored; occurrences are announced at their lead time.",
    "skipped": "The occurrence is skipped.",
    "withdrawn": "The occurrence is skipped and its announcement withdrawn: customers are told.",
    "cancelled": "The series is cancelled: no further occurrence will be announced.",
}


@routes.get(PAGE)
async def series_page(request: web.Request) -> web.Response:
    require(request, "maintenance")
    app = request.app
    now = app[CLOCK]()
    db = app[DATABASE]
    announced = await announced_occurrences(db, now - MAX_DURATION)
    views = [series_view(s, announced.get(s.id, []), now) for s in await all_series(db)]
    config = app[LIVE].config
    return render(
        request,
        "noc_series.html",
        {
            "views": views,
            "done": DONE.get(request.query.get("done", "")),
            "links": [link.id for link in config.links],
            "customers": [customer.id for customer in config.customers],
            "now": now,
            "moment": partial(moment, now=now, tz=UTC),  # a time as every staff page shows it
        },
    )


def _refused(exc: SeriesError) -> PortalError:
    return PortalError(exc.status, str(exc))


@routes.post(PAGE)
async def create(request: web.Request) -> web.Response:
    viewer = require(request, "maintenance")
    form = await read_form(request)
    fields = {name: form.get(name, "") for name in (
        "id", "description", "reference", "start", "timezone", "duration", "rrule", "announce"
    )}  # fmt: skip
    app = request.app
    series = series_from(
        {
            **fields,
            "links": form.getall("links", []),
            "customers": form.getall("customers", []),
            "everything": form.get("everything") == "yes",
        },
        app[LIVE].config,
        viewer.user.name,
    )
    now = app[CLOCK]()
    try:
        await create_series(app[DATABASE], series, now=now)
    except SeriesError as exc:
        raise _refused(exc) from None
    await announce_due(app[DATABASE], now)  # an occurrence due already is announced now
    app[CACHE].clear()
    return redirect(f"{PAGE}?done=created#series-{series.id}")


async def _series(request: web.Request) -> MaintenanceSeries:
    wanted = request.match_info["series_id"]
    for series in await all_series(request.app[DATABASE]):
        if series.id == wanted:
            return series
    raise web.HTTPNotFound()


@routes.post(PAGE + "/{series_id}/skip")
async def skip(request: web.Request) -> web.Response:
    viewer = require(request, "maintenance")
    series = await _series(request)
    form = await read_form(request)
    start = timestamp(form.get("starts_at"), "starts_at")
    if start is None:
        raise PortalError(400, "starts_at is required: the start of the occurrence, as listed")
    app = request.app
    try:
        withdrawn = await skip_occurrence(
            app[DATABASE],
            series,
            start,
            by=viewer.user.name,
            reason=form.get("reason", ""),
            now=app[CLOCK](),
        )
    except SeriesError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    done = "withdrawn" if withdrawn else "skipped"
    return redirect(f"{PAGE}?done={done}#series-{series.id}")


@routes.post(PAGE + "/{series_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    viewer = require(request, "maintenance")
    series = await _series(request)
    form = await read_form(request)
    app = request.app
    try:
        await cancel_series(
            app[DATABASE],
            series.id,
            by=viewer.user.name,
            reason=form.get("reason", ""),
            now=app[CLOCK](),
        )
    except SeriesError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return redirect(f"{PAGE}?done=cancelled#series-{series.id}")
