"""Maintenance as the NOC runs it and customers follow it, shared by the pages and the
API: the windows a viewer may see with the links of theirs each covers, a customer's
planned work for the coming weeks, and a viewer's iCalendar feed.

A customer's windows are those that concern one of their links (named, their customer
named, or everything), and a window names only their own links to them; staff see every
window and every target. Nothing here writes: `collector.maintenance_work` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from kernel.config import Contract
from kernel.domain import MaintenanceWindow
from notify.calendar import Notice, calendar, provider_of, status_of
from portal.auth import Account
from portal.keys import CLOCK, LIVE, READS
from portal.maintenance_views import MaintenanceView, maintenance_view
from portal.scope import can
from sla.report import concerns

PLANNED_AHEAD = timedelta(days=30)  # what a customer's home page lists
FEED_BACK = timedelta(days=90)  # a feed keeps recent work, so calendars show what happened
FEED_AHEAD = timedelta(days=400)


@dataclass(frozen=True, slots=True)
class Seen:
    """A window and the links it covers that the viewer may see (staff: those it names
    and those of the customers it names; nothing listed for a window on everything)."""

    window: MaintenanceWindow
    links: tuple[str, ...]


async def windows_seen(
    request: web.Request, user: Account, start: datetime, end: datetime
) -> list[Seen]:
    """The windows overlapping [start, end) that concern the viewer, in start order."""
    directory = request.app[LIVE].directory
    windows = await request.app[READS].maintenance(start, end)
    if can(user, "all_customers"):
        return [seen_by_staff(request, user, window) for window in windows]
    mine = directory.visible_links(user)
    seen = []
    for window in windows:
        covered = tuple(link.id for link in mine if concerns(window, link.id, link.customer))
        if covered:
            seen.append(Seen(window, covered))
    return seen


def seen_by_staff(request: web.Request, user: Account, window: MaintenanceWindow) -> Seen:
    directory = request.app[LIVE].directory
    links = list(window.link_ids)
    for customer_id in window.customer_ids:
        links += [
            link.id
            for link in directory.visible_links(user, customer_id=customer_id)
            if link.id not in links
        ]
    return Seen(window, tuple(links))


def contracts_deciding(request: web.Request, user: Account, seen: Seen) -> list[Contract]:
    """The contracts whose notice rule decides `seen` for the viewer."""
    directory = request.app[LIVE].directory
    out: list[Contract] = []
    for link_id in seen.links:
        for contract in directory.contracts_of_link(link_id):
            if contract not in out and directory.may_see_customer(user, contract.customer):
                out.append(contract)
    return out


def view_of(request: web.Request, user: Account, seen: Seen) -> MaintenanceView:
    app = request.app
    now = app[CLOCK]()
    tz = app[LIVE].directory.viewer_tz(user)
    config = app[LIVE].config
    if not seen.links:  # everything: too many contracts to list, the rule is stated
        return maintenance_view(seen.window, (), config, now, tz, links=("all links",), rule=True)
    deciding = contracts_deciding(request, user, seen)
    return maintenance_view(seen.window, deciding, config, now, tz, links=seen.links)


async def planned_for_customer(request: web.Request, user: Account) -> list[MaintenanceView] | None:
    """A customer's work in progress or starting within `PLANNED_AHEAD`, soonest first,
    cancelled work included (they were told of it); None for staff (theirs is the NOC's
    desk) and for a customer without links."""
    if can(user, "all_customers") or user.role != "customer":
        return None
    if not request.app[LIVE].directory.visible_links(user):
        return None
    now = request.app[CLOCK]()
    seen = await windows_seen(request, user, now, now + PLANNED_AHEAD)
    views = [view_of(request, user, s) for s in seen if s.window.covers_until > now]
    return [v for v in views if v.state != "past"]


async def feed(request: web.Request, user: Account) -> str:
    """The viewer's maintenance as an iCalendar feed (recent and upcoming): a customer's
    under their account with their own links; staff's under "operations"."""
    app = request.app
    now = app[CLOCK]()
    seen = await windows_seen(request, user, now - FEED_BACK, now + FEED_AHEAD)
    account = user.customer if user.role == "customer" and user.customer else "operations"
    notices = [
        Notice(
            window=s.window,
            account=account,
            object_ids=s.links,
            status=status_of(s.window, now),
            stamp=_stamp(s.window),
            description=s.window.description,
        )
        for s in seen
    ]
    return calendar(notices, provider_of(app[LIVE].config), name="Planned maintenance")


def _stamp(window: MaintenanceWindow) -> datetime:
    """When the window's current version was made: a feed fetched twice is the same text."""
    return window.cancelled_at or window.announced_at


def calendar_response(text: str, filename: str = "maintenance.ics") -> web.Response:
    return web.Response(
        body=text.encode("utf-8"),
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )
