"""The portal's one application factory.

`create_app` receives everything it works with (settings, accounts, customers, links and
a source of link states) and builds nothing else itself: no database, no config file,
no globals. The caller owns those and runs the app (web.AppRunner, or web.run_app).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from linkwatch.domain import LinkState
from portal import views
from portal.auth import LoginThrottle, LoginTokens, PasswordChecker, SessionStore
from portal.directory import Directory
from portal.keys import (
    CLOCK,
    DIRECTORY,
    LOGIN_TOKENS,
    NOTICES,
    PASSWORDS,
    SESSIONS,
    SETTINGS,
    STATES,
    TEMPLATES,
    THROTTLE,
)
from portal.middleware import add_security_headers, error_middleware, session_middleware
from portal.rendering import create_environment
from portal.settings import (
    CustomerLike,
    LinkLike,
    LinkT,
    PortalSettings,
    StateSource,
    UserLike,
)

STATIC_DIR = Path(__file__).parent / "static"


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: PortalSettings,
    *,
    users: Sequence[UserLike],
    customers: Sequence[CustomerLike],
    links: Sequence[LinkT],
    states: StateSource[LinkT],
    clock: Callable[[], datetime] = utc_now,
    notices: Callable[[], Sequence[str]] = tuple,
) -> web.Application:
    """Build the portal.

    `states(links, now)` returns the current states of the links it is given (e.g.
    `functools.partial(collector.status.current_link_states, db)`); the portal passes
    only the links the viewer may see, as the same objects it was given in `links`.
    `clock` returns the current UTC time; tests pass a fake one. `notices` returns
    operational warnings shown to staff (never to customers) above the link board.
    """
    by_id = {link.id: link for link in links}

    async def visible_states(visible: list[LinkLike], now: datetime) -> list[LinkState]:
        return await states([by_id[link.id] for link in visible], now)

    key = settings.secret_key.encode() if settings.secret_key else secrets.token_bytes(32)
    passwords = PasswordChecker(users)

    app = web.Application(
        client_max_size=settings.client_max_size,
        middlewares=[error_middleware, session_middleware],
    )
    app[SETTINGS] = settings
    app[TEMPLATES] = create_environment()
    app[DIRECTORY] = Directory(customers, links)
    app[STATES] = visible_states
    app[PASSWORDS] = passwords
    app[SESSIONS] = SessionStore(settings.session_ttl)
    app[THROTTLE] = LoginThrottle(settings.login_max_failures, settings.login_failure_window)
    app[LOGIN_TOKENS] = LoginTokens(key)
    app[CLOCK] = clock
    app[NOTICES] = notices

    async def prepare_passwords(app: web.Application) -> None:
        await passwords.prepare()  # argon2 work done once, in a thread, before serving

    app.on_startup.append(prepare_passwords)
    app.on_response_prepare.append(add_security_headers)

    router = app.router
    router.add_get("/healthz", views.healthz, allow_head=True)
    router.add_get("/login", views.login_page)
    router.add_post("/login", views.login)
    router.add_post("/logout", views.logout)
    router.add_get("/", views.links_page)
    router.add_get("/links/{link_id}", views.link_page)
    router.add_get("/partial/links", views.links_partial)
    router.add_get("/partial/links/{link_id}", views.link_partial)
    router.add_static("/static", STATIC_DIR, name="static", append_version=False)
    return app
