"""What wraps every request: error pages, sign-in (sessions, API tokens), CSRF checks
and security headers.

No response may ever carry a traceback, SQL or an exception message: unexpected errors
are logged here and answered with a generic page (or JSON under /api/). The only text a
response carries from an exception is a `PortalError`'s message, written for the user.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multidict import MultiDict, MultiDictProxy

from kernel.errors import DatabaseError
from kernel.logs import quoted
from portal.auth import Viewer, tokens_match
from portal.keys import ACCOUNTS, CLOCK, LOGIN_TOKENS, SETTINGS, VIEWER
from portal.rendering import render

log = logging.getLogger(__name__)

SESSION_COOKIE = "linkwatch_session"
LOGIN_CSRF_COOKIE = "linkwatch_login_csrf"
CSRF_FIELD = "csrf_token"
SIGN_IN_PATH = "/login"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

ERROR_MESSAGES: Mapping[int, str] = {
    400: "The request could not be understood.",
    401: "Please sign in to see this page.",
    403: "The form was not accepted: it has expired or was not sent from this site. "
    "Reload the page and try again.",
    404: "There is nothing here. The page may have moved, or it is not available to you.",
    405: "This address does not accept that kind of request.",
    413: "The request is too large.",
    415: "The request was sent in a format this page does not accept.",
    429: "Too many requests. Wait a little and try again.",
    500: "Something went wrong on our side. It has been logged; please try again later.",
    503: "Link status is temporarily unavailable. Please try again in a moment.",
}
_KEPT_HEADERS = (hdrs.ALLOW, hdrs.RETRY_AFTER, hdrs.WWW_AUTHENTICATE)
API_PREFIX = "/api/"


class PortalError(web.HTTPException):
    """A 4xx answer whose message tells the user what was wrong: a bad query parameter,
    a step out of order. Raised by handlers; rendered by `error_middleware`."""

    def __init__(self, status: int, message: str) -> None:
        self.status_code = status
        super().__init__()
        self.user_message = message


def bad_request(message: str) -> PortalError:
    return PortalError(400, message)


def error_response(
    request: web.Request,
    status: int,
    *,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    text = message or ERROR_MESSAGES.get(status, title)
    if request.path.startswith(API_PREFIX):
        body = {"error": {"status": status, "title": title, "message": text}}
        response = web.json_response(body, status=status)
    else:
        try:
            response = render(
                request,
                "error.html",
                {"status": status, "title": title, "message": text},
                status=status,
            )
        except Exception:
            log.exception("error page could not be rendered status=%d", status)
            response = web.Response(text=f"{status} {title}\n", status=status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns every failure into a clean page; the outermost middleware."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects
        kept = {str(name): exc.headers[name] for name in _KEPT_HEADERS if name in exc.headers}
        message = getattr(exc, "user_message", None)
        return error_response(request, exc.status, message=message, headers=kept)
    except DatabaseError as exc:
        # An outage, not a bug: its cause is enough (a traceback per page request would
        # bury the database watch's one line about it).
        log.warning("page unavailable path=%s cause=%s", quoted(request.path), exc)
        return error_response(request, 503, headers={hdrs.RETRY_AFTER: "10"})
    except TimeoutError as exc:
        log.warning(
            "page unavailable path=%s error=%s",
            quoted(request.path),
            type(exc).__name__,
            exc_info=exc,
        )
        return error_response(request, 503, headers={hdrs.RETRY_AFTER: "10"})
    except Exception:
        log.exception(
            "request failed method=%s path=%s", quoted(request.method), quoted(request.path)
        )
        return error_response(request, 500)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attaches the viewer, if any, and checks the CSRF token of every unsafe request.

    Pages sign in with the session cookie; the API only with a bearer token, so that no
    browser's ambient cookie can act through it (and it needs no CSRF token)."""
    if request.path.startswith(API_PREFIX):
        request[VIEWER] = await token_viewer(request)
        return await handler(request)
    request[VIEWER] = await session_viewer(request)
    routed = request.match_info.http_exception is None  # let 404 and 405 stay what they are
    if routed and request.method not in SAFE_METHODS:
        await check_csrf(request)
    return await handler(request)


async def session_viewer(request: web.Request) -> Viewer | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    return await request.app[ACCOUNTS].session(session_id, request.app[CLOCK]())


async def token_viewer(request: web.Request) -> Viewer | None:
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return await request.app[ACCOUNTS].token_viewer(secret.strip(), request.app[CLOCK]())


async def check_csrf(request: web.Request) -> None:
    """A signed-in user's form carries their session's token. The sign-in form, the one
    form a visitor without a session can send, carries its cookie's signed token, which
    no other form takes: anyone can fetch one, so it proves nothing beyond signing in."""
    form = await read_form(request)
    given = form.get(CSRF_FIELD)
    viewer = request[VIEWER]
    session = viewer.session if viewer is not None else None
    if session is not None and tokens_match(session.csrf_token, given):
        return
    if request.path == SIGN_IN_PATH:
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
        if request.app[LOGIN_TOKENS].is_valid(cookie, request.app[CLOCK]()) and tokens_match(
            cookie, given
        ):
            return
    log.info("csrf check failed method=%s path=%s", quoted(request.method), quoted(request.path))
    raise web.HTTPForbidden()


async def read_form(request: web.Request) -> MultiDictProxy[str]:
    """The request's url-encoded form, text fields only; 4xx for anything else."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise web.HTTPUnsupportedMediaType()
    try:
        form = await request.post()
    except (ValueError, LookupError) as exc:  # bad encoding, unknown charset
        raise web.HTTPBadRequest() from exc
    fields: MultiDict[str] = MultiDict()
    for name, value in form.items():
        if isinstance(value, str):
            fields.add(name, value)
    return MultiDictProxy(fields)


def client_address(request: web.Request) -> str | None:
    """Who sent the request: the socket's peer or, when that is a trusted proxy, the
    address X-Forwarded-For names right of every trusted proxy (the entries further left
    are whatever the client chose to send, and prove nothing)."""
    peer = request.remote
    trusted = request.app[SETTINGS].trusted_proxies
    if not trusted or not _among(_ip(peer), trusted):
        return peer
    hops = ",".join(request.headers.getall(hdrs.X_FORWARDED_FOR, ())).split(",")
    for hop in reversed(hops):
        address = _ip(hop.strip())
        if address is None:
            return peer  # not an address: the client's own text, not a proxy's
        if not _among(address, trusted):
            return str(address)
    return peer


def _ip(text: str | None) -> IPv4Address | IPv6Address | None:
    try:
        address = ipaddress.ip_address(text or "")
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _among(
    address: IPv4Address | IPv6Address | None, networks: Sequence[IPv4Network | IPv6Network]
) -> bool:
    return address is not None and any(address in network for network in networks)


def is_https(request: web.Request) -> bool:
    """Whether the browser reached us over HTTPS: directly, or through the configured
    TLS-terminating proxy (whose X-Forwarded-* headers are not trusted for anything)."""
    return request.secure or request.app[SETTINGS].behind_https_proxy


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs for every response, static files and errors included."""
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    if is_https(request):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.path.startswith("/static/"):
        headers.setdefault(hdrs.CACHE_CONTROL, "public, max-age=86400")
    else:
        headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
    headers[hdrs.SERVER] = "linkwatch"
