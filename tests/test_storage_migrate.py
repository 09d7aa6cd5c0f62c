"""Schema migrations: applied once, re-runnable, safe for two processes at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import pytest_asyncio
from psycopg import sql

from collector.database import Database
from collector.embedded import EmbeddedPostgres
from collector.migrate import migrate, migrations, timescaledb_enabled
from collector.settings import StorageSettings
from kernel.errors import DatabaseError


@pytest_asyncio.fixture
async def empty_database_url(
    embedded_postgres: EmbeddedPostgres, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A URL for a new, empty database on the session server, dropped afterwards."""
    name = f"t_{request.node.name.lower()[:40]}"
    async with await psycopg.AsyncConnection.connect(embedded_postgres.url, autocommit=True) as c:
        await c.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        await c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(embedded_postgres.url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    async with await psycopg.AsyncConnection.connect(embedded_postgres.url, autocommit=True) as c:
        await c.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _settings(**overrides: object) -> StorageSettings:
    return StorageSettings(url="unused", data_dir=Path("unused"), **overrides)  # type: ignore[arg-type]


async def test_second_migration_run_applies_nothing(empty_database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(empty_database_url) as conn:
        first = await migrate(conn, _settings())
        second = await migrate(conn, _settings())
        cur = await conn.execute("SELECT name FROM schema_migrations ORDER BY name")
        recorded = [name for (name,) in await cur.fetchall()]
    assert first == [m.name for m in migrations()]
    assert first[:2] == ["001_samples", "002_maintenance_windows"]
    assert second == []
    assert recorded == first


async def test_two_processes_migrating_at_once_apply_each_migration_once(
    empty_database_url: str,
) -> None:
    async with (
        await psycopg.AsyncConnection.connect(empty_database_url) as a,
        await psycopg.AsyncConnection.connect(empty_database_url) as b,
    ):
        applied_a, applied_b = await asyncio.gather(
            migrate(a, _settings()), migrate(b, _settings())
        )
    assert sorted([applied_a, applied_b], key=len) == [[], [m.name for m in migrations()]]


async def test_session_database_has_the_schema(database: Database) -> None:
    async with database.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_name IN ('samples', 'maintenance_windows', 'schema_migrations')"
        )
        assert await cur.fetchone() == (3,)
        assert await timescaledb_enabled(conn) is database.timescaledb


async def test_require_timescaledb_without_the_extension_is_a_clear_error(
    empty_database_url: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(empty_database_url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
        )
        if await cur.fetchone() != (0,):
            pytest.skip("this server has timescaledb; the error path cannot be shown")
        with pytest.raises(DatabaseError, match="timescaledb is 'require'"):
            await migrate(conn, _settings(timescaledb="require"))
        # Nothing was applied: the whole migration is one transaction.
        cur = await conn.execute("SELECT to_regclass('samples') IS NULL")
        assert await cur.fetchone() == (True,)
