"""What every page handler shares: who is asking, what they may reach, and how a query
parameter is read (a bad one is a 400 that says what is allowed, never a 500)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiohttp import hdrs, web
from yarl import URL

from kernel.config import Customer, Link
from portal.auth import Viewer
from portal.keys import LIVE, VIEWER
from portal.middleware import bad_request
from portal.scope import Capability, can
from sla.windows import label_kind, parse_window


def require_viewer(request: web.Request, *, partial: bool = False) -> Viewer:
    """The signed-in viewer; anonymous visitors go to sign-in (a fragment answers 401, and
    the refresh script then reloads the page, which goes there)."""
    viewer = request[VIEWER]
    if viewer is not None:
        return viewer
    if partial:
        raise web.HTTPUnauthorized()
    raise web.HTTPSeeOther(URL("/login").with_query(next=request.path_qs))


def require(request: web.Request, capability: Capability, *, partial: bool = False) -> Viewer:
    """The viewer if their role has `capability`; otherwise the same 404 as a page that does
    not exist, so nobody learns which pages other roles have."""
    viewer = require_viewer(request, partial=partial)
    if not can(viewer.user, capability):
        raise web.HTTPNotFound()
    return viewer


def visible_link(request: web.Request, viewer: Viewer, link_id: str | None = None) -> Link:
    wanted = link_id if link_id is not None else request.match_info["link_id"]
    link = request.app[LIVE].directory.visible_link(viewer.user, wanted)
    if link is None:
        raise web.HTTPNotFound()
    return link


def visible_customer(request: web.Request, viewer: Viewer, customer_id: str) -> Customer:
    customer = request.app[LIVE].directory.visible_customer(viewer.user, customer_id)
    if customer is None:
        raise web.HTTPNotFound()
    return customer


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={hdrs.LOCATION: location})


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


# --- query parameters --------------------------------------------------------------------


def window_label(value: str | None, name: str = "window") -> str | None:
    """A week (2026-W47), month (2026-11), quarter (2026-Q3) or year (2026) label as the
    SLA engine names windows."""
    if value is None or value == "":
        return None
    try:
        window = parse_window(value, ZoneInfo("UTC"))
    except ValueError as exc:
        raise bad_request(f"{name}={exc}") from None
    if not 1970 <= window.start.year <= 9000:
        raise bad_request(f"{name}={value!r} is out of range")
    return window.label


def month_label(value: str | None, name: str = "month") -> str | None:
    label = window_label(value, name)
    if label is not None and label_kind(label) != "month":
        raise bad_request(f"{name}={value!r} is not a month; write it as 2026-11")
    return label


def digits_only(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²', which int() refuses."""
    return text.isascii() and text.isdigit()


def positive_int(query: Mapping[str, str], name: str, default: int, *, most: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not digits_only(text) or not 1 <= int(text) <= most:
        raise bad_request(f"{name}={text!r} is not allowed; use a whole number from 1 to {most}")
    return int(text)


def timestamp(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time with its offset (or Z); a date alone means its midnight UTC."""
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            f"{name}={value!r} is not a time; use ISO 8601 such as 2026-11-24T08:00:00Z"
        ) from None
    if moment.tzinfo is None:
        if len(value) > 10:
            raise bad_request(f"{name}={value!r} has no UTC offset; add one, e.g. Z or +01:00")
        moment = moment.replace(tzinfo=UTC)
    if not datetime(1970, 1, 1, tzinfo=UTC) <= moment <= datetime(9999, 1, 1, tzinfo=UTC):
        raise bad_request(f"{name}={value!r} is out of range")
    return moment.astimezone(UTC)
