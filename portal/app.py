"""The portal's one application factory.

`create_app` receives everything it works with (settings, the database, the validated
config, a clock and a source of operational notices) and opens nothing itself: no
config file, no globals. The caller owns the database and runs the app (web.AppRunner,
or web.run_app); the app's own background work (purging expired sessions) lives in its
cleanup context and ends with it. `secret_key` finds the key the caller passes in the
settings: configured, or kept in data_dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import stat
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from aiohttp import web

from collector import Database
from collector.pipeline import StorageHealth, storage_health
from kernel.config import Config
from kernel.errors import DatabaseError, LinkwatchError
from portal import pages
from portal.api import routes as api_routes
from portal.auth import Accounts, LoginTokens, Throttling
from portal.cache import Cache
from portal.keys import (
    ACCOUNTS,
    CACHE,
    CLOCK,
    DATABASE,
    HEALTH,
    LIVE,
    LOGIN_TOKENS,
    NOTICES,
    PRINTER,
    READS,
    SETTINGS,
    TEMPLATES,
)
from portal.middleware import add_security_headers, error_middleware, session_middleware
from portal.pages.system import health_answers
from portal.reads import PortalReads
from portal.rendering import create_environment
from portal.scope import LiveConfig
from portal.settings import PortalSettings
from sla.pdf import PdfPrinter

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
PURGE_EVERY_S = 600.0


KEPT_KEY_FILE = "portal-secret"
MIN_SECRET_CHARS = 32


class SecretKeyError(LinkwatchError):
    """The portal secret kept in data_dir cannot be used as it is."""

    exit_code = 2


def utc_now() -> datetime:
    return datetime.now(UTC)


def secret_key(configured: str | None, data_dir: Path) -> str:
    """The key that signs the sign-in form's tokens: `portal.secret_key` when configured,
    else the one kept in `data_dir/portal-secret`, made (random, mode 0600) by the first
    portal process that needs it. Kept, it lets a sign-in form opened before a restart
    sign in after it, and portal processes on one data_dir take each other's forms.

    Blocking file I/O, for a thread. Never logs the key.
    """
    if configured:
        return configured
    path = data_dir / KEPT_KEY_FILE
    if not path.exists():
        try:
            _make_secret(path)
        except OSError as exc:
            raise SecretKeyError(
                f"{path}: cannot keep the portal secret there: {exc.strerror or exc}; "
                "make data_dir writable, or set portal.secret_key"
            ) from None
    return _read_secret(path)


def _make_secret(path: Path) -> None:
    """Written whole under another name, then linked into place: the link fails if
    another process got there first (its key then stands), and nobody ever reads half
    a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{KEPT_KEY_FILE}-")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
            log.info("portal secret made path=%s", path)
    finally:
        os.unlink(temp)


def _read_secret(path: Path) -> str:
    try:
        with path.open("rb") as kept:
            mode = stat.S_IMODE(os.fstat(kept.fileno()).st_mode)
            data = kept.read(4096)
    except OSError as exc:
        raise SecretKeyError(
            f"{path}: cannot read the portal secret: {exc.strerror or exc}; "
            "set portal.secret_key, or let Linkwatch read the file"
        ) from None
    if mode & 0o077:
        raise SecretKeyError(
            f"{path}: the portal secret can be read by other users (mode {mode:04o}); "
            f"make it private with `chmod 600 {path}`, or set portal.secret_key"
        )
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    if len(text) < MIN_SECRET_CHARS or not text.isprintable():
        raise SecretKeyError(
            f"{path}: the portal secret has {len(text)} characters, at least "
            f"{MIN_SECRET_CHARS} are needed; remove the file to have a new one made, or "
            "set portal.secret_key"
        )
    return text


def create_app(
    settings: PortalSettings,
    *,
    db: Database,
    config: Config,
    clock: Callable[[], datetime] = utc_now,
    notices: Callable[[], Sequence[str]] = tuple,
    health: Callable[[], StorageHealth] | None = None,
) -> web.Application:
    """Build the portal on a migrated database and a validated config.

    `clock` returns the current UTC time (tests pass a fake one); `notices` returns
    operational warnings shown to staff, never to customers, above the link board;
    `health` says whether samples can be stored (/healthz, /readyz), by default from the
    database's own watch.
    """
    # Without a key (tests, embedding) the forms this app issues do not outlive it.
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
    app[READS] = PortalReads(settings, db, app[LIVE], app[CACHE])
    app[CLOCK] = clock
    app[NOTICES] = notices
    app[HEALTH] = health_answers(health or partial(storage_health, db))
    app[PRINTER] = PdfPrinter()

    app.cleanup_ctx.append(_accounts_ready)
    app.on_response_prepare.append(add_security_headers)
    pages.add_routes(app)
    api_routes.add_routes(app)
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
