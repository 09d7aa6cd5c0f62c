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
    maintenance_work,
    noc,
    notifications,
    recurring,
    reports,
    sites,
    system,
)


def add_routes(app: web.Application) -> None:
    modules = (system, auth, links, link, attributions, noc, sites, notifications, billing)
    # `recurring` before `maintenance_work`: /noc/maintenance/series is not a window id.
    work = (acknowledgements, incidents, recurring, maintenance_work)
    for module in (*modules, *work, reports, account):
        app.router.add_routes(module.routes)
