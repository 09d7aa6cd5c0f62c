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
    maintenance_work,
    noc,
    notifications,
    reports,
    sites,
    system,
)


def add_routes(app: web.Application) -> None:
    modules = (system, auth, links, link, attributions, noc, sites, notifications, billing)
    for module in (*modules, reports, account):
        app.router.add_routes(module.routes)
    app.router.add_routes(maintenance_work.routes)
