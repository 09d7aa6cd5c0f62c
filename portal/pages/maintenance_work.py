"""The NOC's maintenance desk (/noc/maintenance): every window in progress, upcoming and
past, a form to announce one, each window's page with its history and the forms to
reschedule or cancel it; and every viewer's iCalendar feed (/maintenance.ics).

The desk is for roles with the "noc" capability, its forms for those with "maintenance"
(ops, admin); for anyone else they are the 404 of a page that does not exist. Each form
carries the session's CSRF token (checked by the session middleware). Times typed
without an offset are UTC, as staff read them everywhere in the portal. The work is
`collector.maintenance_work`'s; a refusal (times out of order, work under way, a window
the config owns) is answered with what to change, and nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from collector.maintenance_work import (
    IMPACTS,
    HistoryEntry,
    MaintenanceError,
    cancel_window,
    create_window,
    reschedule_window,
    resolve_scope,
    stored_window,
    window_history,
)
from portal.formatting import Moment, moment
from portal.keys import CACHE, CLOCK, DATABASE, LIVE
from portal.maintenance_desk import (
    calendar_response,
    feed,
    seen_by_staff,
    view_of,
    windows_seen,
)
from portal.middleware import PortalError, read_form
from portal.pages.common import redirect, require, require_viewer
from portal.rendering import render
from portal.scope import can

routes = web.RouteTableDef()

PAST_SHOWN = timedelta(days=90)
AHEAD_SHOWN = timedelta(days=400)
DONE = {
    "announced": "Announced. The customers concerned are told at the next notification pass.",
    "rescheduled": "Rescheduled: announced again now, so the notice counts from now.",
    "cancelled": "Cancelled. Whoever was told of it gets a cancellation notice.",
}


def form_time(value: str | None, name: str) -> datetime:
    """A time from a form: `2026-11-25T02:00` (the browser's date and time field) is
    UTC; a time with an offset is taken as it is."""
    text = (value or "").strip()
    if not text:
        raise PortalError(400, f"{name} is required: a date and time in UTC")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PortalError(
            400, f"{name}={text[:40]!r} is not a time; use 2026-11-25T02:00 (UTC)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True, slots=True)
class ChangeView:
    action: str
    actor: str
    note: str
    withdrawn: bool  # a cancellation before the work began
    at: Moment | None
    starts: Moment | None
    ends: Moment | None
    previous_starts: Moment | None
    previous_ends: Moment | None


def _change(entry: HistoryEntry, now: datetime) -> ChangeView:
    return ChangeView(
        action=entry.action,
        actor=entry.actor,
        note=entry.note,
        withdrawn=entry.at <= entry.starts_at,
        at=moment(entry.at, now, UTC),
        starts=moment(entry.starts_at, now, UTC),
        ends=moment(entry.ends_at, now, UTC),
        previous_starts=moment(entry.previous_starts_at, now, UTC),
        previous_ends=moment(entry.previous_ends_at, now, UTC),
    )


def _refused(exc: MaintenanceError) -> PortalError:
    return PortalError(exc.status, str(exc))


def _window_id(request: web.Request) -> str:
    text = request.match_info["maintenance_id"]
    if len(text) > 63:
        raise web.HTTPNotFound()
    return text


@routes.get("/noc/maintenance")
async def desk(request: web.Request) -> web.Response:
    viewer = require(request, "noc")
    user = viewer.user
    app = request.app
    now = app[CLOCK]()
    seen = await windows_seen(request, user, now - PAST_SHOWN, now + AHEAD_SHOWN)
    views = [(s, view_of(request, user, s)) for s in seen]
    directory = app[LIVE].directory
    return render(
        request,
        "noc_maintenance.html",
        {
            "current": [v for v in views if v[1].state == "in progress"],
            "upcoming": [v for v in views if v[1].state == "upcoming"],
            "past": [v for v in reversed(views) if v[1].state == "past"],
            "may_maintain": can(user, "maintenance"),
            "links": directory.visible_links(user),
            "customers": directory.visible_customers(user),
            "impacts": IMPACTS,
            "now": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
        },
    )


@routes.post("/noc/maintenance")
async def announce(request: web.Request) -> web.Response:
    viewer = require(request, "maintenance")
    form = await read_form(request)
    app = request.app
    what = form.get("scope", "")
    if what not in ("links", "customers", "everything"):
        raise PortalError(400, "choose what the work covers: links, customers or everything")
    try:
        scope = resolve_scope(
            app[LIVE].config,
            link_ids=form.getall("link_ids", []) if what == "links" else (),
            customer_ids=form.getall("customer_ids", []) if what == "customers" else (),
            everything=what == "everything",
        )
        window = await create_window(
            app[DATABASE],
            scope,
            starts_at=form_time(form.get("starts_at"), "starts_at"),
            ends_at=form_time(form.get("ends_at"), "ends_at"),
            description=form.get("description", ""),
            reference=form.get("reference", ""),
            impact=form.get("impact", "OUTAGE"),
            by=viewer.user.name,
            now=app[CLOCK](),
        )
    except MaintenanceError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return redirect(f"/noc/maintenance/{window.id}?done=announced")


@routes.get("/noc/maintenance/{maintenance_id}")
async def window_page(request: web.Request) -> web.Response:
    viewer = require(request, "noc")
    app = request.app
    stored = await stored_window(app[DATABASE], _window_id(request))
    if stored is None:
        raise web.HTTPNotFound()
    window = stored.window
    now = app[CLOCK]()
    seen = seen_by_staff(request, viewer.user, window)
    open_ = stored.editable and window.cancelled_at is None and window.ends_at > now
    return render(
        request,
        "noc_maintenance_window.html",
        {
            "stored": stored,
            "view": view_of(request, viewer.user, seen),
            "history": [_change(h, now) for h in await window_history(app[DATABASE], window.id)],
            "may_maintain": can(viewer.user, "maintenance"),
            "may_reschedule": open_ and window.starts_at > now,
            "may_cancel": open_,
            "done": DONE.get(request.query.get("done", "")),
            "starts_value": window.starts_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
            "ends_value": window.ends_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
        },
    )


@routes.post("/noc/maintenance/{maintenance_id}/reschedule")
async def reschedule(request: web.Request) -> web.Response:
    viewer = require(request, "maintenance")
    window_id = _window_id(request)
    form = await read_form(request)
    app = request.app
    try:
        await reschedule_window(
            app[DATABASE],
            window_id,
            starts_at=form_time(form.get("starts_at"), "starts_at"),
            ends_at=form_time(form.get("ends_at"), "ends_at"),
            by=viewer.user.name,
            now=app[CLOCK](),
            note=form.get("note", ""),
            config=app[LIVE].config,
        )
    except MaintenanceError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return redirect(f"/noc/maintenance/{window_id}?done=rescheduled")


@routes.post("/noc/maintenance/{maintenance_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    viewer = require(request, "maintenance")
    window_id = _window_id(request)
    form = await read_form(request)
    app = request.app
    try:
        await cancel_window(
            app[DATABASE],
            window_id,
            by=viewer.user.name,
            now=app[CLOCK](),
            note=form.get("note", ""),
            config=app[LIVE].config,
        )
    except MaintenanceError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return redirect(f"/noc/maintenance/{window_id}?done=cancelled")


@routes.get("/maintenance.ics")
async def calendar_feed(request: web.Request) -> web.Response:
    """The signed-in viewer's maintenance for their calendar (a customer only theirs)."""
    viewer = require_viewer(request)
    return calendar_response(await feed(request, viewer.user))
