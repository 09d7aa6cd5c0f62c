"""Signing in and out."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from aiohttp import hdrs, web

from kernel.logs import quoted
from portal.auth import MAX_PASSWORD_CHARS, MAX_USERNAME_CHARS
from portal.keys import ACCOUNTS, CLOCK, LOGIN_TOKENS, SETTINGS, VIEWER
from portal.middleware import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SIGN_IN_PATH,
    client_address,
    is_https,
    read_form,
)
from portal.pages.common import redirect, safe_next
from portal.rendering import render

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

LOGIN_FAILED = "Wrong username or password."


@routes.get(SIGN_IN_PATH)
async def login_page(request: web.Request) -> web.Response:
    next_path = safe_next(request.query.get("next"))
    if request[VIEWER] is not None:
        return redirect(next_path)
    return login_form(request, next_path)


def login_form(
    request: web.Request,
    next_path: str,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
) -> web.Response:
    tokens, now = request.app[LOGIN_TOKENS], request.app[CLOCK]()
    # The cookie's token is kept while young, so that two sign-in tabs share it.
    token = request.cookies.get(LOGIN_CSRF_COOKIE)
    age = tokens.age(token, now)
    if token is None or age is None or age > tokens.lifetime / 2:
        token = tokens.issue(now)
    context = {"login_token": token, "next": next_path, "error": error, "username": username}
    response = render(request, "login.html", context, status=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path=SIGN_IN_PATH,
        httponly=True,
        samesite="Lax",
        secure=is_https(request) or None,
    )
    return response


@routes.post(SIGN_IN_PATH)
async def login(request: web.Request) -> web.Response:
    app = request.app
    form = await read_form(request)
    name = form.get("username", "").strip()
    password = form.get("password", "")
    next_path = safe_next(form.get("next"))
    accounts = app[ACCOUNTS]
    remote = client_address(request) or "unknown"
    now = app[CLOCK]()

    user, wait = None, None
    if name and password and len(name) <= MAX_USERNAME_CHARS:
        wait = await accounts.admit(name, remote, now)
        if wait is None and len(password) <= MAX_PASSWORD_CHARS:
            user = await accounts.authenticate(name, password)
    if wait is not None:
        log.warning("login throttled user=%s remote=%s", quoted(name, 64), quoted(remote))
        response = login_form(
            request,
            next_path,
            error=f"Too many failed sign-in attempts. Try again in {_spoken(wait)}.",
            username=name,
            status=429,
        )
        response.headers[hdrs.RETRY_AFTER] = str(max(1, math.ceil(wait.total_seconds())))
        return response
    if user is None:
        log.info("login failed user=%s remote=%s", quoted(name, 64), quoted(remote))
        return login_form(request, next_path, error=LOGIN_FAILED, username=name, status=401)

    await accounts.signed_in(user, name, remote, now)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        await accounts.end_session(previous)  # a new id at every sign-in: no fixation
    session = await accounts.create_session(user, app[CLOCK](), remote)
    log.info("login user=%s role=%s remote=%s", user.name, user.role, quoted(remote))
    response = redirect(next_path)
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        path="/",
        max_age=int(app[SETTINGS].session_ttl.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=is_https(request) or None,
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path=SIGN_IN_PATH)
    return response


def _spoken(wait: timedelta) -> str:
    seconds = max(1, math.ceil(wait.total_seconds()))
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    viewer = request[VIEWER]
    if viewer is not None and viewer.session is not None:
        await request.app[ACCOUNTS].end_session(viewer.session.id)
        log.info("logout user=%s", viewer.user.name)
    response = redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
