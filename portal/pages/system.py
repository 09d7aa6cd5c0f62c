"""Pages about the portal itself rather than links: liveness, readiness and its icon.

Both answer from what the process knows in memory (the database watch's last check, the
sample pipeline's writes and spool) and never query the database: /healthz is what load
balancers poll and the portal benchmark's anchor, so it must cost no more than aiohttp
itself. The JSON is encoded at most once a second, and reused meanwhile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from collector.pipeline import StorageHealth
from portal.keys import HEALTH

routes = web.RouteTableDef()

HealthAnswer = tuple[bool, bytes]  # ready, JSON body
_FAVICON = (Path(__file__).parent.parent / "static" / "favicon.ico").read_bytes()
# Browsers ask for /favicon.ico on every site, signed in or not; it changes with a release
# at most, so a day's caching spares a request per page view.
_FAVICON_CACHE = "public, max-age=86400"
_FRESH_S = 1.0  # the database watch looks every 2 s: a second-old answer is current


def health_answers(health: Callable[[], StorageHealth]) -> Callable[[], HealthAnswer]:
    """The current answer, encoded again only when the last one is a second old."""
    expires_at = float("-inf")
    answer: HealthAnswer = (False, b"")

    def current() -> HealthAnswer:
        nonlocal expires_at, answer
        now = time.monotonic()
        if now >= expires_at:
            found = health()
            answer = (found.ready, json.dumps(found.as_json()).encode())
            expires_at = now + _FRESH_S
        return answer

    return current


@routes.get("/healthz", allow_head=True)
async def healthz(request: web.Request) -> web.Response:
    """200 while the process serves: a database outage is reported, not a failure of
    the process (samples wait in the spool meanwhile)."""
    _, body = request.app[HEALTH]()
    return web.Response(body=body, content_type="application/json")


@routes.get("/readyz", allow_head=True)
async def readyz(request: web.Request) -> web.Response:
    """200 while samples reach the database, 503 while they cannot be stored."""
    ready, body = request.app[HEALTH]()
    return web.Response(body=body, content_type="application/json", status=200 if ready else 503)


@routes.get("/favicon.ico", allow_head=True)
async def favicon(request: web.Request) -> web.Response:
    """The portal's icon, for every visitor: browsers fetch it before anyone signs in."""
    return web.Response(
        body=_FAVICON, content_type="image/x-icon", headers={"Cache-Control": _FAVICON_CACHE}
    )
