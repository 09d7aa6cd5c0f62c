"""The viewer's own account: API tokens (made, shown once, revoked) and the password."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from portal.auth import AccountError
from portal.formatting import moment
from portal.keys import ACCOUNTS, CLOCK, LIVE
from portal.middleware import read_form
from portal.pages.common import digits_only, redirect, require_viewer
from portal.rendering import render

routes = web.RouteTableDef()

TOKEN_LIFETIMES = {"30": 30, "90": 90, "365": 365, "never": None}  # days


async def _page(
    request: web.Request,
    *,
    new_secret: str | None = None,
    error: str | None = None,
    message: str | None = None,
    status: int = 200,
) -> web.Response:
    viewer = require_viewer(request)
    app = request.app
    now = app[CLOCK]()
    tz = app[LIVE].directory.viewer_tz(viewer.user)
    tokens = [
        {
            "token": token,
            "created": moment(token.created_at, now, tz),
            "expires": moment(token.expires_at, now, tz),
            "last_used": moment(token.last_used_at, now, tz),
            "revoked": moment(token.revoked_at, now, tz),
            "active": token.active(now),
        }
        for token in await app[ACCOUNTS].tokens(viewer.user)
    ]
    customer = viewer.user.customer
    context = {
        "tokens": tokens,
        "new_secret": new_secret,
        "error": error,
        "message": message,
        "customer_name": app[LIVE].directory.customer_name(customer) if customer else None,
        "lifetimes": TOKEN_LIFETIMES,
    }
    return render(request, "account.html", context, status=status)


@routes.get("/account")
async def account_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/account/tokens")
async def create_token(request: web.Request) -> web.Response:
    viewer = require_viewer(request)
    form = await read_form(request)
    lifetime = form.get("expires_days", "90")
    if lifetime not in TOKEN_LIFETIMES:
        return await _page(request, error="Choose how long the token lasts.", status=400)
    days = TOKEN_LIFETIMES[lifetime]
    now = request.app[CLOCK]()
    expires_at = None if days is None else now + timedelta(days=days)
    try:
        _token, secret = await request.app[ACCOUNTS].create_token(
            viewer.user, form.get("label", ""), now, expires_at=expires_at
        )
    except AccountError as exc:
        return await _page(request, error=str(exc), status=400)
    # Shown in this response only: it is stored as a digest and cannot be shown again.
    return await _page(request, new_secret=secret)


@routes.post("/account/tokens/{token_id}/revoke")
async def revoke_token(request: web.Request) -> web.Response:
    viewer = require_viewer(request)
    text = request.match_info["token_id"]
    if not digits_only(text) or len(text) > 18:
        raise web.HTTPNotFound()
    revoked = await request.app[ACCOUNTS].revoke_token(viewer.user, int(text), request.app[CLOCK]())
    if not revoked:
        raise web.HTTPNotFound()  # someone else's token is as absent as a missing one
    return redirect("/account")


@routes.post("/account/password")
async def change_password(request: web.Request) -> web.Response:
    viewer = require_viewer(request)
    form = await read_form(request)
    accounts = request.app[ACCOUNTS]
    current, new, again = (form.get(k, "") for k in ("current", "new", "again"))
    if viewer.user.source == "config":
        return await _page(
            request,
            error="This account is defined in the configuration file; ask an administrator "
            "to change its password there.",
            status=400,
        )
    if new != again:
        return await _page(request, error="The new passwords do not match.", status=400)
    if await accounts.authenticate(viewer.user.name, current) is None:
        return await _page(request, error="The current password is not right.", status=400)
    try:
        await accounts.set_password(viewer.user.name, new, request.app[CLOCK]())
    except AccountError as exc:
        return await _page(request, error=str(exc), status=400)
    # Every session of the account ended, this one too: sign in with the new password.
    return redirect("/login?next=/account")
