"""The TimescaleDB path: samples as a compressed hypertable with retention.

Runs on the machine's PostgreSQL 15 when TimescaleDB is installed there; skips otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from collector.database import connect
from collector.embedded import EmbeddedPostgres
from collector.migrate import migrate
from collector.settings import StorageSettings
from collector.writer import write_samples
from linkwatch.domain import Outcome, Sample
from tests.helpers import NO_TIMESCALEDB, TIMESCALEDB_BINDIR, TIMESCALEDB_SKIP_REASON

pytestmark = [
    pytest.mark.timescaledb,
    pytest.mark.skipif(NO_TIMESCALEDB, reason=TIMESCALEDB_SKIP_REASON),
]


async def _policies(conn: psycopg.AsyncConnection[Any]) -> dict[str, str]:
    cur = await conn.execute(
        "SELECT proc_name, coalesce(config ->> 'compress_after', config ->> 'drop_after')"
        " FROM timescaledb_information.jobs WHERE hypertable_name = 'samples'"
    )
    return {name: value for name, value in await cur.fetchall()}


async def test_samples_become_a_compressed_hypertable_with_policies(
    pg_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKWATCH_PG_BINDIR", str(TIMESCALEDB_BINDIR))
    server = EmbeddedPostgres(pg_data_dir, durable=False)
    assert server.binaries.timescaledb
    settings = StorageSettings(
        url=server.start(),
        data_dir=pg_data_dir,
        timescaledb="require",
        chunk_interval=timedelta(hours=6),
        compress_after=timedelta(days=2),
        retention=timedelta(days=30),
    )
    db = await connect(settings)
    try:
        assert db.timescaledb
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT d.column_name, d.time_interval"
                " FROM timescaledb_information.dimensions d WHERE d.hypertable_name = 'samples'"
            )
            assert await cur.fetchall() == [("observed_at", timedelta(hours=6))]
            cur = await conn.execute(
                "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc"
                " FROM timescaledb_information.compression_settings"
                " WHERE hypertable_name = 'samples' ORDER BY attname"
            )
            assert await cur.fetchall() == [
                ("link_id", 1, None, None),
                ("observed_at", None, 1, False),
                ("probe_id", 2, None, None),
            ]
            assert await _policies(conn) == {
                "policy_compression": "2 days",
                "policy_retention": "30 days",
            }

        now = datetime.now(UTC).replace(microsecond=0)
        batch = [
            Sample("link-a", "icmp", now - timedelta(minutes=i), Outcome.UP, rtt_ms=1.0)
            for i in range(20)
        ]
        assert await write_samples(db, batch) == 20
        assert await write_samples(db, batch) == 0

        # Late data (a spool replayed after an outage) may land in compressed chunks.
        old = [
            Sample("link-a", "icmp", now - timedelta(days=3, minutes=i), Outcome.DOWN)
            for i in range(10)
        ]
        assert await write_samples(db, old[:5]) == 5
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT count(compress_chunk(c))"
                " FROM show_chunks('samples', older_than => interval '2 days') c"
            )
            assert await cur.fetchone() == (1,)
        assert await write_samples(db, old) == 5
        assert await write_samples(db, old) == 0

        # Re-running with changed settings is a no-op for the schema and updates the policies.
        changed = StorageSettings(
            url=settings.url,
            data_dir=pg_data_dir,
            timescaledb="require",
            compress_after=timedelta(days=7),
            retention=timedelta(days=395),
        )
        async with await psycopg.AsyncConnection.connect(server.url) as conn:
            assert await migrate(conn, changed) == []
            assert await migrate(conn, changed) == []
            assert await _policies(conn) == {
                "policy_compression": "7 days",
                "policy_retention": "395 days",
            }
    finally:
        await db.close()
        server.stop()
