"""The token's user (/me): who the token a request signs in with belongs to.

Reads nothing: the user is the one the session middleware found for the token.
"""

from __future__ import annotations

from aiohttp import web

from portal.api.endpoints import Body, endpoint
from portal.api.schemas import ref
from portal.auth import Account


@endpoint("GET", "/me", "getMe", "Who the token belongs to", response=ref("Me"))
async def me(request: web.Request, user: Account) -> Body:
    return {"name": user.name, "role": user.role, "customer": user.customer}
