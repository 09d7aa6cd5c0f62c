"""The JSON API under /api/v1: the pages' data for machines, with the pages' authorisation.

Requests sign in with an API token (``Authorization: Bearer lw_...``), never a cookie.
Errors are JSON of one stable shape, ``{"error": {"status", "title", "message"}}``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from portal.auth import Viewer
from portal.keys import VIEWER

routes = web.RouteTableDef()
PREFIX = "/api/v1"


def add_routes(app: web.Application) -> None:
    app.router.add_routes(routes)


def require_token(request: web.Request) -> Viewer:
    viewer = request[VIEWER]
    if viewer is None:
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="linkwatch"'})
    return viewer


@routes.get(f"{PREFIX}/me")
async def me(request: web.Request) -> web.Response:
    user = require_token(request).user
    body: dict[str, Any] = {"name": user.name, "role": user.role, "customer": user.customer}
    return web.json_response(body)
