"""Request handlers and the view models their templates read.

Handlers stay thin: find the viewer, ask the directory which links they may see, fetch
those links' states, shape them for people and render. A link the viewer may not see
and a link that does not exist answer the same 404.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from aiohttp import hdrs, web
from yarl import URL

from linkwatch.domain import LinkState, LinkStatus, ProbeState
from portal.auth import MAX_PASSWORD_CHARS, MAX_USERNAME_CHARS, Viewer
from portal.directory import Directory
from portal.formatting import elapsed, local_time, milliseconds, percent
from portal.keys import (
    CLOCK,
    DIRECTORY,
    LOGIN_TOKENS,
    NOTICES,
    PASSWORDS,
    SESSIONS,
    SETTINGS,
    STATES,
    THROTTLE,
    VIEWER,
)
from portal.middleware import LOGIN_CSRF_COOKIE, SESSION_COOKIE, read_form
from portal.rendering import render
from portal.settings import LinkLike

log = logging.getLogger(__name__)

LOGIN_FAILED = "Wrong username or password."
STATUS_ORDER = sorted(LinkStatus, key=lambda status: -status.severity)


# --- view models ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Moment:
    relative: str  # "3 h 5 min ago"
    local: str  # "2024-05-01 14:03 CEST", in the customer's time zone
    iso: str  # UTC, for <time datetime>


@dataclass(frozen=True, slots=True)
class ProbeRow:
    id: str
    kind: str
    status: LinkStatus
    since: Moment | None
    last_observed: Moment | None
    rtt: str
    loss: str
    error: str | None


@dataclass(frozen=True, slots=True)
class LinkRow:
    id: str
    description: str
    customer_name: str
    status: LinkStatus
    since: Moment | None
    rtt: str
    loss: str
    probes: tuple[ProbeRow, ...]


@dataclass(frozen=True, slots=True)
class Board:
    rows: list[LinkRow]  # worst first, then by id
    counts: list[tuple[LinkStatus, int]]  # worst first, statuses present only
    updated: str  # when the states were read, in the viewer's time zone
    notices: tuple[str, ...] = ()  # operational warnings, for staff only


def moment(at: datetime | None, now: datetime, tz: tzinfo, *, exact: bool = True) -> Moment | None:
    """`exact` False: the event was at `at` or earlier (only recent samples were read)."""
    if at is None:
        return None
    return Moment(
        relative=f"{'' if exact else 'over '}{elapsed(now - at)} ago",
        local=local_time(at, tz) if exact else f"at or before {local_time(at, tz)}",
        iso=at.astimezone(UTC).isoformat(timespec="seconds"),
    )


def probe_row(probe: ProbeState, now: datetime, tz: tzinfo) -> ProbeRow:
    return ProbeRow(
        id=probe.probe_id,
        kind=probe.kind,
        status=probe.status,
        since=moment(probe.since, now, tz, exact=probe.since_exact),
        last_observed=moment(probe.last_observed_at, now, tz),
        rtt=milliseconds(probe.rtt_ms),
        loss=percent(probe.loss_pct),
        error=probe.error,
    )


def link_row(
    directory: Directory, link: LinkLike, state: LinkState | None, now: datetime
) -> LinkRow:
    tz = directory.customer_tz(link.customer)
    probes = state.probes if state is not None else ()
    # The link's own figures are its first probe that measured anything (config order).
    measured = next((p for p in probes if p.rtt_ms is not None or p.loss_pct is not None), None)
    return LinkRow(
        id=link.id,
        description=link.description,
        customer_name=directory.customer_name(link.customer),
        status=state.status if state is not None else LinkStatus.UNKNOWN,
        since=moment(
            state.since if state is not None else None,
            now,
            tz,
            exact=state.since_exact if state is not None else True,
        ),
        rtt=milliseconds(measured.rtt_ms if measured else None),
        loss=percent(measured.loss_pct if measured else None),
        probes=tuple(probe_row(p, now, tz) for p in probes),
    )


async def load_board(request: web.Request, viewer: Viewer, links: Sequence[LinkLike]) -> Board:
    app = request.app
    directory = app[DIRECTORY]
    now = app[CLOCK]()
    states: list[LinkState] = []
    if links:
        async with asyncio.timeout(app[SETTINGS].state_timeout.total_seconds()):
            states = await app[STATES](list(links), now)
    by_id = {state.link_id: state for state in states}
    rows = [link_row(directory, link, by_id.get(link.id), now) for link in links]
    rows.sort(key=lambda row: (-row.status.severity, row.id))
    counts = Counter(row.status for row in rows)
    user = viewer.user
    tz = directory.customer_tz(user.customer) if user.role == "customer" and user.customer else UTC
    return Board(
        rows=rows,
        counts=[(status, counts[status]) for status in STATUS_ORDER if counts[status]],
        updated=now.astimezone(tz).strftime("%H:%M:%S %Z"),
        notices=tuple(app[NOTICES]()) if user.role != "customer" else (),
    )


# --- helpers ---------------------------------------------------------------------------


def require_viewer(request: web.Request, *, partial: bool = False) -> Viewer:
    viewer = request[VIEWER]
    if viewer is not None:
        return viewer
    if partial:  # the refresh script reloads the page, which then goes to sign-in
        raise web.HTTPUnauthorized()
    raise web.HTTPSeeOther(URL("/login").with_query(next=request.path_qs))


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only, never another host."""
    if (
        not value
        or len(value) > 2000
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(char) < 0x20 or char == "\x7f" for char in value)
    ):
        return "/"
    return value


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={hdrs.LOCATION: location})


def visible_link(request: web.Request, viewer: Viewer) -> LinkLike:
    link = request.app[DIRECTORY].visible_link(viewer.user, request.match_info["link_id"])
    if link is None:
        raise web.HTTPNotFound()
    return link


# --- handlers --------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


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
    tokens = request.app[LOGIN_TOKENS]
    token = request.cookies.get(LOGIN_CSRF_COOKIE)
    if token is None or not tokens.is_valid(token):
        token = tokens.issue()
    context = {"login_token": token, "next": next_path, "error": error, "username": username}
    response = render(request, "login.html", context, status=status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/login",
        httponly=True,
        samesite="Lax",
        secure=request.secure or None,
    )
    return response


async def login(request: web.Request) -> web.Response:
    app = request.app
    form = await read_form(request)
    name = form.get("username", "").strip()
    password = form.get("password", "")
    next_path = safe_next(form.get("next"))
    throttle = app[THROTTLE]
    now = app[CLOCK]()

    wait = throttle.retry_after(name, now)
    if wait is not None:
        log.warning("login throttled user=%.64s remote=%s", name, request.remote)
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        response = login_form(
            request,
            next_path,
            error="Too many failed sign-in attempts for this account. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            username=name,
            status=429,
        )
        response.headers[hdrs.RETRY_AFTER] = str(max(1, math.ceil(wait.total_seconds())))
        return response

    user = None
    if name and password and len(name) <= MAX_USERNAME_CHARS:
        throttle.record_attempt(name, now)
        if len(password) <= MAX_PASSWORD_CHARS:
            user = await app[PASSWORDS].authenticate(name, password)
    if user is None:
        log.info("login failed user=%.64s remote=%s", name, request.remote)
        return login_form(request, next_path, error=LOGIN_FAILED, username=name, status=401)

    throttle.forgive(name)
    sessions = app[SESSIONS]
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        sessions.delete(previous)  # a new id at every sign-in: no session fixation
    session = sessions.create(user.name, app[CLOCK]())
    log.info("login user=%s role=%s remote=%s", user.name, user.role, request.remote)
    response = redirect(next_path)
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        path="/",
        max_age=int(app[SETTINGS].session_ttl.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=request.secure or None,
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


async def logout(request: web.Request) -> web.Response:
    viewer = request[VIEWER]
    if viewer is not None:
        request.app[SESSIONS].delete(viewer.session.id)
        log.info("logout user=%s", viewer.user.name)
    response = redirect("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def links_page(request: web.Request) -> web.Response:
    viewer = require_viewer(request)
    links = request.app[DIRECTORY].visible_links(viewer.user)
    board = await load_board(request, viewer, links)
    return render(request, "links.html", {"board": board})


async def links_partial(request: web.Request) -> web.Response:
    viewer = require_viewer(request, partial=True)
    links = request.app[DIRECTORY].visible_links(viewer.user)
    board = await load_board(request, viewer, links)
    return render(request, "_links.html", {"board": board})


async def link_page(request: web.Request) -> web.Response:
    viewer = require_viewer(request)
    board = await load_board(request, viewer, [visible_link(request, viewer)])
    return render(request, "link.html", {"board": board, "row": board.rows[0]})


async def link_partial(request: web.Request) -> web.Response:
    viewer = require_viewer(request, partial=True)
    board = await load_board(request, viewer, [visible_link(request, viewer)])
    return render(request, "_link.html", {"board": board, "row": board.rows[0]})
