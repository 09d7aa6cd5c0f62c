"""Operations' incident desk (/noc/incidents): pick the outages of a shared failure and
group them into one incident (or add one to incident #N), post the updates customers
read, and close an incident with its cause. The link page offers the same forms for
its own outages; they post here and come back to it.

Only roles with the "incidents" capability (ops, admin) reach these routes; for anyone
else they are the 404 of a page that does not exist. Each form carries the session's
CSRF token (checked by the session middleware). The work is
`collector.incident_reports`': a refusal (no such outage, one in another incident, a
closed incident, a blank update) is answered with what to change, and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from collector.incident_reports import (
    MAX_BODY_CHARS,
    MAX_CAUSE_CHARS,
    MAX_TITLE_CHARS,
    IncidentReport,
    IncidentReportError,
    OutageRef,
    add_outages,
    incident_reports,
    open_incident,
    post_update,
)
from collector.state_reads import Incident, incidents
from kernel.config import Link
from portal.auth import Account, Viewer
from portal.incident_views import (
    CAUSES,
    HISTORY,
    HOME_AFTER_CLOSE,
    IncidentView,
    Notes,
    incident_view,
    on_home,
    pickable,
    visible_reports,
)
from portal.keys import CACHE, CLOCK, DATABASE, LIVE, READS
from portal.maintenance_views import outage_note
from portal.middleware import PortalError, bad_request, read_form
from portal.pages.common import digits_only, redirect, require, timestamp
from portal.rendering import render
from portal.scope import can

routes = web.RouteTableDef()

PICK_BACK = timedelta(hours=24)  # outages the desk offers to group: running or this recent
CLOSED_SHOWN = timedelta(days=7)


def _customers(request: web.Request) -> dict[str, str]:
    return {link.id: link.customer for link in request.app[LIVE].config.links}


def _outages(form: MultiDictProxy[str]) -> list[OutageRef]:
    """The outages a form names, each as "link|start"."""
    picked = []
    for value in form.getall("outage", []):
        link_id, bar, start = value.partition("|")
        moment = timestamp(start, "outage") if bar else None
        if not link_id or moment is None:
            raise bad_request(
                f"outage={value[:80]!r} is not an outage; pick one from the list (its link "
                "and start, as link|2026-11-24T08:00:00+00:00)"
            )
        picked.append(OutageRef(link_id, moment))
    if not picked:
        raise bad_request("pick at least one outage")
    return picked


def _incident_id(text: str) -> int:
    if not digits_only(text) or len(text) > 18:
        raise web.HTTPNotFound()
    return int(text)


def _back(request: web.Request, form: MultiDictProxy[str], done: str, incident_id: int) -> str:
    """Back to the link page a form came from (a configured link only), else the desk."""
    back = form.get("back", "")
    if back.startswith("/links/") and request.app[LIVE].directory.link(back[7:]) is not None:
        return f"{back}?done={done}#incident-{incident_id}"
    return f"/noc/incidents?done={done}#incident-{incident_id}"


def _refused(exc: IncidentReportError) -> PortalError:
    return PortalError(exc.status, str(exc))


async def held_outages(
    app: web.Application, reports: Iterable[IncidentReport], now: datetime
) -> list[Incident]:
    """The stored outages the incidents hold, with the ends their records lack."""
    held = frozenset((o.link_id, o.outage_start) for r in reports for o in r.outages)
    return await app[READS].held_outages(held, now) if held else []


async def exclusion_notes(
    app: web.Application, found: Iterable[Incident], user: Account, now: datetime, tz: tzinfo
) -> Notes:
    """What excluded maintenance took out of each outage, under the contracts of its link
    that `user` may see (`portal.maintenance_views.outage_note`); outages it took
    nothing out of are left out."""
    found = list(found)
    if not found:
        return {}
    planned = await app[READS].maintenance_around(now)
    config, directory = app[LIVE].config, app[LIVE].directory
    notes = {}
    for outage in found:
        link = directory.link(outage.link_id)
        if link is None:
            continue
        contracts = [
            c
            for c in directory.contracts_of_link(link.id)
            if directory.may_see_customer(user, c.customer)
        ]
        note = outage_note(outage, link, contracts, config, planned, now, tz)
        if note is not None:
            notes[(outage.link_id, outage.starts_at)] = note
    return notes


@routes.get("/noc/incidents")
async def desk(request: web.Request) -> web.Response:
    viewer = require(request, "incidents")
    app = request.app
    now = app[CLOCK]()
    directory = app[LIVE].directory
    tz = directory.viewer_tz(viewer.user)
    links = [link.id for link in app[LIVE].config.links]
    reports = await incident_reports(app[DATABASE], since=now - CLOSED_SHOWN)
    found = await incidents(app[DATABASE], links, now - PICK_BACK, now)
    held = await held_outages(app, reports, now)
    notes = await exclusion_notes(app, [*found, *held], viewer.user, now, tz)
    views = [incident_view(r, directory, True, now, tz, notes) for r in reports]
    context = {
        "open": [v for v in views if v.open],
        "closed": [v for v in views if not v.open],
        "outages": pickable(found, reports, directory, now, tz, notes),
        "causes": CAUSES,
        "limits": {"title": MAX_TITLE_CHARS, "body": MAX_BODY_CHARS, "cause": MAX_CAUSE_CHARS},
        "done": request.query.get("done"),
    }
    return render(request, "noc_incidents.html", context)


@routes.post("/noc/incidents")
async def group(request: web.Request) -> web.Response:
    """Open an incident over the picked outages, or add them to incident #N."""
    viewer = require(request, "incidents")
    form = await read_form(request)
    picked = _outages(form)
    app = request.app
    target = form.get("incident", "new")
    try:
        if target == "new":
            report = await open_incident(
                app[DATABASE],
                picked,
                title=form.get("title", ""),
                by=viewer.user.name,
                at=app[CLOCK](),
                customers=_customers(request),
            )
            done = "opened"
        else:
            report = await add_outages(
                app[DATABASE],
                _existing(target),
                picked,
                by=viewer.user.name,
                at=app[CLOCK](),
                customers=_customers(request),
            )
            done = "grouped"
    except IncidentReportError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return redirect(_back(request, form, done, report.id))


def _existing(text: str) -> int:
    if not digits_only(text) or len(text) > 18:
        raise bad_request(f"incident={text[:40]!r} is not an incident; pick one from the list")
    return int(text)


@routes.post("/noc/incidents/{incident_id}/outages")
async def add(request: web.Request) -> web.Response:
    viewer = require(request, "incidents")
    incident_id = _incident_id(request.match_info["incident_id"])
    form = await read_form(request)
    picked = _outages(form)
    app = request.app
    try:
        await add_outages(
            app[DATABASE],
            incident_id,
            picked,
            by=viewer.user.name,
            at=app[CLOCK](),
            customers=_customers(request),
        )
    except IncidentReportError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return redirect(_back(request, form, "grouped", incident_id))


@routes.post("/noc/incidents/{incident_id}/updates")
async def update(request: web.Request) -> web.Response:
    """Post an update; with `close`, the final one, with the cause."""
    viewer = require(request, "incidents")
    incident_id = _incident_id(request.match_info["incident_id"])
    form = await read_form(request)
    closing = form.get("close") in ("1", "on", "yes")
    close = (form.get("cause_category", ""), form.get("cause", "")) if closing else None
    app = request.app
    try:
        await post_update(
            app[DATABASE],
            incident_id,
            form.get("body", ""),
            by=viewer.user.name,
            at=app[CLOCK](),
            customers=_customers(request),
            close=close,
        )
    except IncidentReportError as exc:
        raise _refused(exc) from None
    app[CACHE].clear()
    return redirect(_back(request, form, "closed" if closing else "posted", incident_id))


# --- what the link page and the home page show ----------------------------------------

LINK_DESK_BACK = timedelta(days=7)  # the link page offers its outages this recent


async def link_incidents(request: web.Request, viewer: Viewer, link: Link) -> dict[str, Any]:
    """The link page's incidents (those holding an outage of the link in the last 90
    days, as the viewer may read them) and, for staff who may, the forms to group the
    link's recent outages and post updates. Built per request: the forms carry the
    session's CSRF token, which no cached part of the page may hold."""
    app = request.app
    now = app[CLOCK]()
    directory = app[LIVE].directory
    tz = directory.viewer_tz(viewer.user)
    staff = can(viewer.user, "all_customers")
    at_desk = can(viewer.user, "incidents")
    told = (
        # The desk acts on what it shows: read now. Everyone else reads what the link's
        # other parts read, through the cache (a change made in the portal clears it).
        await incident_reports(app[DATABASE], since=now - HISTORY, link_ids=[link.id])
        if at_desk
        else await app[READS].incident_reports(("link", link.id), now - HISTORY, [link.id])
    )
    reports = visible_reports(told, directory, viewer.user)
    desk: dict[str, Any] | None = None
    found: list[Incident] = []
    if at_desk:
        found = await incidents(app[DATABASE], [link.id], now - LINK_DESK_BACK, now)
    held = await held_outages(app, reports, now)
    notes = await exclusion_notes(app, [*found, *held], viewer.user, now, tz)
    if at_desk:
        every_open = [r for r in await incident_reports(app[DATABASE], since=now) if r.is_open]
        desk = {
            "outages": pickable(found, reports, directory, now, tz, notes),
            "open": [(r.id, r.title) for r in every_open],
            "causes": CAUSES,
            "limits": {
                "title": MAX_TITLE_CHARS,
                "body": MAX_BODY_CHARS,
                "cause": MAX_CAUSE_CHARS,
            },
            "back": f"/links/{link.id}",
        }
    return {
        "incidents": [incident_view(r, directory, staff, now, tz, notes) for r in reports],
        "desk": desk,
        "done": request.query.get("done"),
    }


async def home_incidents(request: web.Request, viewer: Viewer) -> list[IncidentView]:
    """The home page's incidents: open, or resolved a short while ago, concerning the
    viewer's links, as the viewer may read them."""
    app = request.app
    now = app[CLOCK]()
    directory = app[LIVE].directory
    user = viewer.user
    staff = can(user, "all_customers")
    links = None if staff else [link.id for link in directory.visible_links(user)]
    if links is not None and not links:
        return []
    scope = ("home", None if links is None else tuple(links))
    found = await app[READS].incident_reports(scope, now - HOME_AFTER_CLOSE, links)
    shown = on_home(visible_reports(found, directory, user), now)
    tz = directory.viewer_tz(user)
    notes = await exclusion_notes(app, await held_outages(app, shown, now), user, now, tz)
    return [incident_view(r, directory, staff, now, tz, notes) for r in shown]
