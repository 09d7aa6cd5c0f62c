"""Maintenance windows concerning the caller's links (/maintenance), read through
`PortalReads`.

A customer sees only windows concerning their links, and among a window's targets only
their own links and themselves; staff see every window and every target.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from kernel.domain import MaintenanceWindow
from portal.api.endpoints import DATA, FROM, ID, PAGING, TO, Body, endpoint, page
from portal.api.formats import iso, micros
from portal.api.links import INCIDENT_HISTORY
from portal.api.openapi import Param
from portal.api.params import Key, ident, time_range
from portal.api.schemas import ref
from portal.auth import Account
from portal.keys import CLOCK, LIVE, READS
from portal.scope import can
from sla.report import concerns

MAINTENANCE_AHEAD = timedelta(days=90)


def _maintenance(
    window: MaintenanceWindow, links: frozenset[str] | None, customer: str | None
) -> Body:
    """`links`: the caller's link ids (None: staff, who see every target)."""
    everything = not window.link_ids and not window.customer_ids
    return {
        "id": window.id,
        "description": window.description,
        "starts_at": iso(window.starts_at),
        "ends_at": iso(window.ends_at),
        "announced_at": iso(window.announced_at),
        "cancelled_at": None if window.cancelled_at is None else iso(window.cancelled_at),
        "everything": everything,
        "link_ids": [i for i in window.link_ids if links is None or i in links],
        "customer_ids": [c for c in window.customer_ids if links is None or c == customer],
        "reference": window.reference,
        "impact": window.impact,
        "sequence": window.sequence,
    }


@endpoint(
    "GET",
    "/maintenance",
    "listMaintenance",
    "Maintenance windows concerning the caller's links",
    description="Windows overlapping [from, to) that concern a link the caller may see, "
    "in start order. `to` defaults to 90 days from now, `from` to 120 days before `to`; "
    "any span may be asked for, a page at a time. A customer sees only their own links "
    "and themselves among a window's targets.",
    response=ref("MaintenancePage"),
    params=(
        Param("link", ID, "Only windows concerning this link."),
        FROM,
        TO,
        *PAGING,
    ),
    errors=(400, 404, *DATA),
)
async def list_maintenance(request: web.Request, user: Account) -> Body:
    directory = request.app[LIVE].directory
    wanted = ident(request, "link")
    mine = directory.visible_links(user)
    links = mine
    if wanted is not None:
        link = directory.visible_link(user, wanted)
        if link is None:
            raise web.HTTPNotFound()
        links = [link]
    now = request.app[CLOCK]()
    start, end = time_range(
        request,
        now,
        before=INCIDENT_HISTORY + MAINTENANCE_AHEAD,
        after=MAINTENANCE_AHEAD,
    )
    windows: list[MaintenanceWindow] = []
    if start < end:  # a reversed range would still meet a window spanning both ends
        windows = list(await request.app[READS].maintenance(start, end))
    staff = can(user, "all_customers")
    if staff and wanted is None:
        concerned = windows  # every window, even one for links no longer configured
    else:
        concerned = [w for w in windows if any(concerns(w, x.id, x.customer) for x in links)]
    # Targets shown: every link of the caller's, whichever one the filter named.
    shown = None if staff else frozenset(link.id for link in mine)
    customer = None if staff else user.customer

    def key(window: MaintenanceWindow) -> Key:
        return (micros(window.starts_at), window.id)

    concerned.sort(key=key)
    return page(request, concerned, key, lambda w: _maintenance(w, shown, customer))
