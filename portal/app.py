"""The portal's one application factory.

`create_app` receives everything it works with (settings, the database, the validated
config, a clock and a source of operational notices) and opens nothing itself: no
config file, no globals. The caller owns the database and runs the app (web.AppRunner,
or web.run_app); the app's own background work (purging expired sessions) lives in its
cleanup context and ends with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from collector import Database
from linkwatch.config import Config
from linkwatch.errors import DatabaseError
from portal import api, pages
from portal.auth import Accounts, LoginTokens, Throttling
from portal.cache import Cache
from portal.keys import (
    ACCOUNTS,
    CACHE,
    CLOCK,
    DATABASE,
    LIVE,
    LOGIN_TOKENS,
    NOTICES,
    SETTINGS,
    TEMPLATES,
)
from portal.middleware import add_security_headers, error_middleware, session_middleware
from portal.rendering import create_environment
from portal.scope import LiveConfig
from portal.settings import PortalSettings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
PURGE_EVERY_S = 600.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: PortalSettings,
    *,
    db: Database,
    config: Config,
    clock: Callable[[], datetime] = utc_now,
    notices: Callable[[], Sequence[str]] = tuple,
) -> web.Application:
    """Build the portal on a migrated database and a validated config.

    `clock` returns the current UTC time (tests pass a fake one); `notices` returns
    operational warnings shown to staff, never to customers, above the link board.
    """
    key = settings.secret_key.encode() if settings.secret_key else secrets.token_bytes(32)
    accounts = Accounts(
        db,
        session_ttl=settings.session_ttl,
        throttling=Throttling(
            per_account_and_address=settings.login_max_failures,
            per_address=settings.login_max_failures_per_address,
            account_ceiling=settings.login_account_ceiling,
            slow_interval=settings.login_slow_interval,
            window=settings.login_failure_window,
        ),
    )
    app = web.Application(
        client_max_size=settings.client_max_size,
        middlewares=[error_middleware, session_middleware],
    )
    app[SETTINGS] = settings
    app[TEMPLATES] = create_environment()
    app[DATABASE] = db
    app[LIVE] = LiveConfig(config)
    app[ACCOUNTS] = accounts
    app[LOGIN_TOKENS] = LoginTokens(key)
    app[CACHE] = Cache(settings.cache_ttl.total_seconds())
    app[CLOCK] = clock
    app[NOTICES] = notices

    app.cleanup_ctx.append(_accounts_ready)
    app.on_response_prepare.append(add_security_headers)
    pages.add_routes(app)
    api.add_routes(app)
    app.router.add_static("/static", STATIC_DIR, name="static", append_version=False)
    return app


async def reload_config(app: web.Application, config: Config) -> None:
    """Serve from a new (validated) config: customers, links, contracts and maintenance
    show at once, and the config's users are brought in as at start-up. Settings of the
    portal itself (listen address, secret key, session lifetime) apply at a restart."""
    app[LIVE].replace(config)
    app[CACHE].clear()  # pages built from the old config must not outlive it
    await app[ACCOUNTS].sync_config_users(config.users, app[CLOCK]())


async def _accounts_ready(app: web.Application) -> AsyncIterator[None]:
    """Bring the config's users in before serving, then purge expired sessions now and
    then until the app stops."""
    accounts, clock = app[ACCOUNTS], app[CLOCK]
    await accounts.sync_config_users(app[LIVE].config.users, clock())
    await accounts.prepare()  # argon2 work done once, in a thread, before serving

    async def purge() -> None:
        while True:
            try:
                await accounts.purge(clock())
            except DatabaseError as exc:
                log.warning("session purge skipped, database unavailable cause=%s", exc)
            await asyncio.sleep(PURGE_EVERY_S)

    task = asyncio.create_task(purge(), name="portal-session-purge")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
