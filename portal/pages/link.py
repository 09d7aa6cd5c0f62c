"""One link's page: its live status and probes.

The page and its refresh fragment answer 404 alike for a link that does not exist and for
one the viewer may not see.
"""

from __future__ import annotations

from aiohttp import web

from portal.keys import CLOCK, DIRECTORY
from portal.pages.common import require_viewer, visible_link
from portal.pages.links import active_maintenance, link_row, link_states
from portal.rendering import render

routes = web.RouteTableDef()


async def _context(request: web.Request, *, partial: bool) -> dict[str, object]:
    viewer = require_viewer(request, partial=partial)
    link = visible_link(request, viewer)
    app = request.app
    directory = app[DIRECTORY]
    now = app[CLOCK]()
    tz = directory.viewer_tz(viewer.user)
    states = await link_states(request, [link], f"link:{link.id}", now)
    active = await active_maintenance(request, now)
    row = link_row(directory, link, states.get(link.id), active, now, tz)
    updated = now.astimezone(tz).strftime("%H:%M:%S %Z")
    return {"row": row, "updated": updated}


@routes.get("/links/{link_id}")
async def link_page(request: web.Request) -> web.Response:
    return render(request, "link.html", await _context(request, partial=False))


@routes.get("/partial/links/{link_id}")
async def link_partial(request: web.Request) -> web.Response:
    return render(request, "_link.html", await _context(request, partial=True))
