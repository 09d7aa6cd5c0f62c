"""Pages about the portal itself rather than links: the health check."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()


@routes.get("/healthz", allow_head=True)
async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")
