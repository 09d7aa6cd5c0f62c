"""The database handle: one checked connection pool, migrated at start-up and watched.

This is the one boundary where psycopg errors become `kernel.errors.DatabaseError`,
with a message naming the database (never its password) and the cause. Code elsewhere
gets connections from `Database.connection()` and never builds its own pool. Nothing
here knows about tables beyond running the migrations (and whether they ever ran).

`Database.watch()` asks the server for a round trip every few seconds (and at once when a
writer reports trouble through `suspect()`), keeps what it finds in memory for
`health()` (so /healthz costs no query), logs an outage once when it starts and once
when it ends, and restarts the embedded server when it has stopped on its own (a crash,
`kill -9`), with doubling pauses between attempts. It never restarts a server it did not
start: a configured `database.url` belongs to someone else. psycopg's own warnings about
failed connections, one per connection and reconnect attempt, are turned into DEBUG lines
so that an outage is not a storm in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from collector.embedded import EmbeddedPostgres
from collector.migrate import migrate, timescaledb_enabled
from collector.queries import query
from collector.settings import StorageSettings
from kernel.errors import DatabaseError, NoDatabase

logger = logging.getLogger(__name__)

APPLICATION_NAME = "linkwatch"
# While the database is known to be away, a request waits this long for a connection
# rather than the pool's full timeout: pages answer 503 promptly instead of after 10 s.
_ACQUIRE_WHILE_DOWN_S = 1.0
# The embedded server's restarts: the first after this pause (its orphaned backends need
# a moment to exit and release shared memory), each next one after twice the last.
_RESTART_FIRST_DELAY = timedelta(seconds=1)
_RESTART_MAX_DELAY = timedelta(seconds=60)
# psycopg's warnings about connections that fail, come back broken or are abandoned:
# one per connection and per reconnect attempt. `Database.watch` says it once an outage.
_CONNECTION_CHATTER = (
    "error connecting in",
    "reconnection attempt in pool",
    "discarding closed connection",
    "discarding broken connection",
    "closing returned connection",
    "rolling back returned connection",
    "rollback failed",
    "error resetting connection",
    "error ignored in rollback",
    "query not terminated after cancellation",
    "query cancellation failed",
    "query cancellation interrupted",
)


def describe(conninfo: str) -> str:
    """A URL-like name for a database that is safe to log: the password is left out."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "(unparsable database URL)"
    user = params.get("user")
    host = params.get("host") or params.get("hostaddr") or "default host"
    port = params.get("port")
    dbname = params.get("dbname") or "default database"
    who = f"{user}@" if user else ""
    if str(host).startswith("/"):  # a unix socket directory
        return f"postgresql://{who}/{dbname}?host={host}"
    where = f"{host}:{port}" if port else str(host)
    return f"postgresql://{who}{where}/{dbname}"


def describe_pool(pool: AsyncConnectionPool[Any]) -> str:
    """A loggable name for a pool's database (its conninfo may be a callable)."""
    conninfo = pool.conninfo
    return describe(conninfo) if isinstance(conninfo, str) else f"of pool {pool.name!r}"


def _cause(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class _ConnectionChatter(logging.Filter):
    """Turns psycopg's per-connection failure warnings into DEBUG lines (dropped unless
    the process logs at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not isinstance(record.msg, str):
            return True
        if not record.msg.startswith(_CONNECTION_CHATTER):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


_CHATTER_FILTER = _ConnectionChatter()


def quiet_connection_chatter() -> None:
    """Install the filter on psycopg's loggers (idempotent)."""
    for name in ("psycopg", "psycopg.pool"):
        library = logging.getLogger(name)
        if _CHATTER_FILTER not in library.filters:
            library.addFilter(_CHATTER_FILTER)


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    """What `Database.watch` last found, kept in memory for /healthz, /readyz and /noc."""

    reachable: bool
    since: datetime  # when the current state (reachable or not) began
    cause: str | None  # why the database is unreachable, while it is
    embedded: bool  # Linkwatch's own server, which it restarts when it stops on its own
    restarts: int  # embedded server restarts by this process
    restart_attempts: int  # failed restart attempts in the current outage
    next_restart_at: datetime | None  # while waiting to try again
    last_restart_at: datetime | None
    last_outage_s: float | None  # how long the latest outage that ended lasted


@contextmanager
def database_errors(name: str) -> Iterator[None]:
    """Turn psycopg errors raised inside the block into DatabaseError naming `name`."""
    try:
        yield
    except psycopg.Error as exc:
        raise DatabaseError(f"database {name}: {_cause(exc)}") from exc


class Database:
    """A migrated database reached through an open, checked connection pool.

    Use `connect()` to make one. Connections handed out are in autocommit mode: open a
    transaction with `conn.transaction()` where several statements must hold together.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        name: str,
        conninfo: str,
        timescaledb: bool,
        migrations_applied: tuple[str, ...] = (),
        embedded: EmbeddedPostgres | None = None,
    ) -> None:
        self.pool = pool
        self.name = name
        self._conninfo = conninfo
        self.timescaledb = timescaledb
        self.migrations_applied = migrations_applied  # by the connect() that made this
        self.embedded = embedded
        self._closed = False
        # What the watch found; see `health()`.
        self._reachable = True
        self._state_since = datetime.now(UTC)
        self._down_since_s = 0.0  # monotonic, for the outage's length
        self._cause: str | None = None
        self._restarts = 0
        self._restart_attempts = 0
        self._next_restart_at: datetime | None = None
        self._last_restart_at: datetime | None = None
        self._last_outage_s: float | None = None
        self._wake = asyncio.Event()
        self._check_task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; psycopg errors inside the block become DatabaseError."""
        wait_s = None if self._reachable else _ACQUIRE_WHILE_DOWN_S
        try:
            with database_errors(self.name):
                async with self.pool.connection(timeout=wait_s) as conn:
                    yield conn
        except DatabaseError as exc:
            if isinstance(exc.__cause__, PoolTimeout):
                # The pool only says it timed out; one direct attempt tells the user why.
                raise DatabaseError(f"{exc} ({await self._why_unreachable()})") from exc
            raise

    async def _why_unreachable(self) -> str:
        try:
            conn = await psycopg.AsyncConnection.connect(self._conninfo, connect_timeout=2)
        except psycopg.Error as exc:
            return _cause(exc)
        await conn.close()
        return "the server accepts connections now: the pool is reconnecting or fully busy"

    # -- health ------------------------------------------------------------------------

    def health(self) -> DatabaseHealth:
        """What the watch found last; no I/O."""
        return DatabaseHealth(
            reachable=self._reachable,
            since=self._state_since,
            cause=self._cause,
            embedded=self.embedded is not None,
            restarts=self._restarts,
            restart_attempts=self._restart_attempts,
            next_restart_at=self._next_restart_at,
            last_restart_at=self._last_restart_at,
            last_outage_s=self._last_outage_s,
        )

    def suspect(self) -> None:
        """Something failed against the database: have the watch check it now."""
        self._wake.set()

    async def watch(
        self,
        stop: asyncio.Event,
        *,
        every: timedelta = timedelta(seconds=2),
        check_timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        """Check the database every `every` (at once after `suspect()`) until `stop`;
        a check that gets no answer within `check_timeout` counts as a failure. An embedded
        server found stopped is started again, with doubling pauses between attempts."""
        while not stop.is_set():
            cause = await self._check(check_timeout.total_seconds())
            if cause is None:
                self._now_reachable()
            else:
                self._now_unreachable(cause)
                if self.embedded is not None and await self._embedded_stopped():
                    await self._restart_embedded(stop)
                    continue  # check the restarted server at once
            self._wake.clear()
            await _until_first(stop, self._wake, every.total_seconds())

    async def _check(self, timeout_s: float) -> str | None:
        """None if the database answered a round trip in time, else why not."""
        previous = self._check_task
        if previous is not None and not previous.done():
            # The last check is still waiting for a hung server (psycopg needs seconds to
            # give up on it); a second one would only wait beside it.
            return self._cause or "no answer to the previous check yet"
        task = asyncio.ensure_future(self._ping())
        task.add_done_callback(_consume)
        self._check_task = task
        await asyncio.wait({task}, timeout=timeout_s)
        if not task.done():
            task.cancel()  # it unwinds in the background; see `_check_task` above
            return f"no answer within {timeout_s:g} s (the server is hung or cut off)"
        exc = task.exception()
        if exc is None:
            return None
        if isinstance(exc, DatabaseError):
            return _one_line(str(exc))
        raise exc

    async def _ping(self) -> None:
        async with self.connection() as conn:
            await conn.execute(query("database_ping"))

    def _now_reachable(self) -> None:
        if self._reachable:
            return
        down_s = time.monotonic() - self._down_since_s
        self._reachable = True
        self._state_since = datetime.now(UTC)
        self._cause = None
        self._last_outage_s = down_s
        logger.info("database reachable again database=%s down_s=%.1f", self.name, down_s)

    def _now_unreachable(self, cause: str) -> None:
        self._cause = cause
        if not self._reachable:
            return
        self._reachable = False
        self._state_since = datetime.now(UTC)
        self._down_since_s = time.monotonic()
        # Once an outage: psycopg's per-connection warnings are DEBUG lines meanwhile.
        logger.warning("database unreachable database=%s cause=%s", self.name, cause)

    async def _embedded_stopped(self) -> bool:
        assert self.embedded is not None
        try:
            return not await asyncio.to_thread(self.embedded.is_running)
        except (DatabaseError, OSError) as exc:
            logger.warning("embedded postgres state unknown cause=%s", _one_line(str(exc)))
            return False

    async def _restart_embedded(self, stop: asyncio.Event) -> None:
        """Start the embedded server again: one log line per attempt, pauses doubling from
        one second to a minute, until it runs or `stop` is set."""
        assert self.embedded is not None
        delay_s = _RESTART_FIRST_DELAY.total_seconds()
        attempt = 0
        while True:
            self._next_restart_at = datetime.now(UTC) + timedelta(seconds=delay_s)
            if await _until_first(stop, None, delay_s):
                self._next_restart_at = None
                return
            attempt += 1
            began = time.monotonic()
            try:
                pid = await asyncio.to_thread(self.embedded.restart)
            except DatabaseError as exc:
                self._restart_attempts = attempt
                delay_s = min(delay_s * 2, _RESTART_MAX_DELAY.total_seconds())
                logger.error(
                    "embedded postgres restart failed attempt=%d retry_in_s=%g data_dir=%s "
                    "cause=%s",
                    attempt,
                    delay_s,
                    self.embedded.root,
                    _one_line(str(exc)),
                )
                continue
            self._restarts += 1
            self._restart_attempts = 0
            self._next_restart_at = None
            self._last_restart_at = datetime.now(UTC)
            logger.warning(
                "embedded postgres restarted after it stopped unexpectedly attempt=%d pid=%d "
                "took_ms=%d restarts=%d data_dir=%s",
                attempt,
                pid,
                (time.monotonic() - began) * 1000,
                self._restarts,
                self.embedded.root,
            )
            return

    async def close(self) -> None:
        """Close the pool, then stop the embedded server if this handle started it."""
        if self._closed:
            return
        self._closed = True
        await self.pool.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
        logger.info("database closed database=%s", self.name)

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _has_schema(conn: psycopg.AsyncConnection[Any]) -> bool:
    cur = await conn.execute(query("schema_exists"))
    row = await cur.fetchone()
    return bool(row and row[0])


def _consume(task: asyncio.Task[Any]) -> None:
    """Retrieve an abandoned task's outcome so that asyncio does not report it."""
    if not task.cancelled():
        task.exception()


async def _until_first(stop: asyncio.Event, wake: asyncio.Event | None, timeout_s: float) -> bool:
    """Wait up to `timeout_s` for `stop` (or `wake`); True if `stop` is set."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return stop.is_set()


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    # Times come back in UTC (datetime.timezone.utc), as the domain types expect,
    # whatever the server's or the role's default time zone is.
    await conn.execute("SET TimeZone TO 'UTC'")


async def connect(
    settings: StorageSettings,
    *,
    open_timeout_s: float = 30.0,
    acquire_timeout_s: float = 10.0,
    create: bool = True,
    migrations: bool = True,
) -> Database:
    """Reach (or start) the database, migrate it, and open the pool.

    With `settings.url` None the embedded PostgreSQL in `settings.data_dir` is started
    and is stopped again by `Database.close()`. `acquire_timeout_s` bounds how long one
    operation waits for a connection, which is how long a write blocks while the
    database is away. `create` False is for commands that only read what was stored:
    where no database, or none with Linkwatch's tables, exists, raise NoDatabase rather
    than create one (an existing one is still brought up to date). `migrations` False
    leaves the schema as it is, for a process that must never change it (a probe agent,
    whose role may not): the caller checks that it holds what it needs.
    """
    if settings.pool_min_size < 0 or settings.pool_max_size < max(1, settings.pool_min_size):
        raise ValueError("need 0 <= pool_min_size <= pool_max_size and pool_max_size >= 1")
    quiet_connection_chatter()
    embedded: EmbeddedPostgres | None = None
    if settings.url is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        try:
            url = await asyncio.to_thread(embedded.start, create=create)
        except NoDatabase:
            await asyncio.to_thread(embedded.stop)
            raise
        name = f"{describe(url)} (embedded, in {embedded.root})"
    else:
        url = settings.url
        name = describe(url)
    try:
        with database_errors(name):
            # A direct connection first: its failure names the cause, where a pool that
            # cannot fill would only report a timeout.
            async with await psycopg.AsyncConnection.connect(
                url, connect_timeout=max(1, int(open_timeout_s)), application_name=APPLICATION_NAME
            ) as conn:
                if not create and not await _has_schema(conn):
                    raise NoDatabase(
                        f"database {name} holds no Linkwatch tables: nothing has been stored there"
                    )
                applied = await migrate(conn, settings) if migrations else []
                timescaledb = await timescaledb_enabled(conn)
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                url,
                min_size=settings.pool_min_size,
                max_size=settings.pool_max_size,
                open=False,
                timeout=acquire_timeout_s,
                # Give up a reconnect backoff after a few seconds (the next request starts
                # a fresh attempt): the default lets the backoff grow to half a minute, so
                # spooled samples would wait that long after the database is back.
                reconnect_timeout=5,
                # Skip connections broken by a server restart instead of failing on them.
                check=AsyncConnectionPool.check_connection,
                kwargs={"autocommit": True, "application_name": APPLICATION_NAME},
                configure=_configure,
                name="linkwatch",
            )
            try:
                await pool.open(wait=True, timeout=open_timeout_s)
            except BaseException:
                await pool.close()
                raise
    except BaseException:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        raise
    logger.info(
        "database ready database=%s timescaledb=%s migrations_applied=%s pool_max=%d",
        name,
        timescaledb,
        ",".join(applied) or "none",
        settings.pool_max_size,
    )
    return Database(
        pool,
        name=name,
        conninfo=url,
        timescaledb=timescaledb,
        migrations_applied=tuple(applied),
        embedded=embedded,
    )
