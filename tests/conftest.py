"""Fixtures shared by every test package.

`database` is a migrated `collector.Database` on one embedded PostgreSQL started for the
whole session, with every table emptied before each test. It is plain PostgreSQL even when
the server has TimescaleDB (LINKWATCH_PG_BINDIR pointing at such an installation):
`timescale_db` is the TimescaleDB one, and tests compare the two engines side by side.
`embedded_postgres` is that server (its `url` reaches the `linkwatch` database).
`pg_data_dir` is an empty directory for a test that needs a PostgreSQL cluster of its own.

The directories live under a mkdtemp directory made traversable, because when the tests
run as root PostgreSQL runs as an unprivileged user, which cannot enter pytest's own
0700 tmp directories.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import tuple_row

from collector.database import Database, connect
from collector.embedded import EmbeddedPostgres
from collector.settings import StorageSettings
from tests.helpers import TIMESCALEDB_BINDIR, TIMESCALEDB_SKIP_REASON
from tests.netns import netns_host  # noqa: F401 - a fixture for every test module


@pytest.fixture(scope="session")
def pg_base_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="linkwatch-test-"))
    base.chmod(0o711)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_data_dir(pg_base_dir: Path) -> Path:
    """An empty data_dir for a test's own embedded cluster; the test must stop it."""
    path = Path(tempfile.mkdtemp(dir=pg_base_dir))
    path.chmod(0o711)
    return path


@pytest.fixture(scope="session")
def embedded_postgres(pg_base_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(pg_base_dir / "session", durable=False)
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="session")
async def session_database(
    embedded_postgres: EmbeddedPostgres, pg_base_dir: Path
) -> AsyncIterator[Database]:
    settings = StorageSettings(
        url=embedded_postgres.url, data_dir=pg_base_dir / "session", timescaledb="off"
    )
    db = await connect(settings, acquire_timeout_s=5)
    yield db
    await db.close()


@pytest_asyncio.fixture
async def database(session_database: Database) -> Database:
    """The session's database with every table but schema_migrations emptied."""
    async with session_database.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            "SELECT tablename FROM pg_tables"
            " WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'"
        )
        tables = [name for (name,) in await cur.fetchall()]
        if tables:
            await conn.execute(
                sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
            )
    return session_database


@pytest.fixture(scope="session")
def timescaledb_server(pg_base_dir: Path) -> Iterator[EmbeddedPostgres]:
    """One PostgreSQL with TimescaleDB for the session; skips where it is not installed."""
    if TIMESCALEDB_BINDIR is None:
        pytest.skip(TIMESCALEDB_SKIP_REASON)
    directory = Path(tempfile.mkdtemp(dir=pg_base_dir))
    directory.chmod(0o711)
    server = EmbeddedPostgres(directory, durable=False, bin_dir=TIMESCALEDB_BINDIR)
    server.start()
    yield server
    server.stop()


_timescale_databases = itertools.count()


@pytest_asyncio.fixture
async def timescale_db(
    timescaledb_server: EmbeddedPostgres, pg_base_dir: Path
) -> AsyncIterator[Database]:
    """A fresh migrated database with TimescaleDB; raw samples kept 100 years."""
    name = f"timescale_{next(_timescale_databases)}"
    async with await psycopg.AsyncConnection.connect(
        make_conninfo(timescaledb_server.url, dbname="postgres"), autocommit=True
    ) as admin:
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    settings = StorageSettings(
        url=make_conninfo(timescaledb_server.url, dbname=name),
        data_dir=pg_base_dir,
        timescaledb="require",
        retention=timedelta(days=36_500),
    )
    db = await connect(settings)
    assert db.timescaledb
    yield db
    await db.close()
