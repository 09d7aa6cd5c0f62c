"""The portal's server-rendered pages, one module per area; each has its `routes`."""

from __future__ import annotations

from aiohttp import web

from portal.pages import (
    account,
    attributions,
    auth,
    billing,
    link,
    links,
    noc,
    notifications,
    reports,
    sites,
    system,
)


def add_routes(app: web.Application) -> None:
    for module in (system, auth, links, link, noc, sites, notifications, billing, reports, account):
        app.router.add_routes(module.routes)
    app.router.add_routes(attributions.routes)
