"""The portal's server-rendered pages, one module per area; each has its `routes`."""

from __future__ import annotations

from aiohttp import web

from portal.pages import (
    account,
    acknowledgements,
    attributions,
    auth,
    billing,
    incidents,
    link,
    links,
    noc,
    notifications,
    recurring,
    reports,
    sites,
    system,
)


def add_routes(app: web.Application) -> None:
    modules = (system, auth, links, link, attributions, noc, sites, notifications, billing)
    for module in (*modules, acknowledgements, incidents, recurring, reports, account):
        app.router.add_routes(module.routes)
