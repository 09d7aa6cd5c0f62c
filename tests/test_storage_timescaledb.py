"""The TimescaleDB path: samples as a hypertable with the columnstore and retention.

Runs on the machine's PostgreSQL 15 when TimescaleDB is installed there; skips otherwise.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from collector.chunking import CHUNKS_IN_PLAY, SAMPLE_INDEX_BYTES
from collector.database import connect
from collector.embedded import EmbeddedPostgres
from collector.importer import check_file, import_samples
from collector.migrate import migrate
from collector.settings import StorageSettings
from collector.writer import write_samples
from kernel.config import Link
from kernel.domain import Outcome, Sample, SampleTimes
from tests.helpers import NO_TIMESCALEDB, TIMESCALEDB_BINDIR, TIMESCALEDB_SKIP_REASON, linkwatch

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


async def _columnstore_layout(conn: psycopg.AsyncConnection[Any]) -> list[tuple[str, str]]:
    cur = await conn.execute(
        "SELECT segmentby, orderby FROM timescaledb_information.hypertable_columnstore_settings"
        " WHERE hypertable = 'samples'::regclass"
    )
    return await cur.fetchall()


async def _convert_to_columnstore(conn: psycopg.AsyncConnection[Any], older_than: timedelta) -> int:
    """What the columnstore policy does when it runs: convert chunks older than that."""
    cur = await conn.execute(
        "SELECT c::text FROM show_chunks('samples', older_than => %s::interval) c", (older_than,)
    )
    chunks = [chunk for (chunk,) in await cur.fetchall()]
    for chunk in chunks:
        await conn.execute("CALL convert_to_columnstore(%s::regclass)", (chunk,))
    return len(chunks)


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
            assert await _columnstore_layout(conn) == [("link_id,probe_id", "observed_at DESC")]
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
            assert await _convert_to_columnstore(conn, timedelta(days=2)) == 1
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


# How Linkwatch set samples up before TimescaleDB 2.18's columnstore API, call for call.
_COMPRESSION_API_SETUP = [
    "CREATE EXTENSION IF NOT EXISTS timescaledb",
    "SELECT create_hypertable('samples', 'observed_at', chunk_time_interval => interval '1 day',"
    " if_not_exists => true, migrate_data => true)",
    "ALTER TABLE samples SET (timescaledb.compress,"
    " timescaledb.compress_segmentby = 'link_id, probe_id',"
    " timescaledb.compress_orderby = 'observed_at DESC')",
    "SELECT add_compression_policy('samples', interval '7 days', if_not_exists => true)",
    "SELECT add_retention_policy('samples', interval '395 days', if_not_exists => true)",
]


async def test_a_database_set_up_with_the_compression_api_moves_to_the_columnstore(
    timescaledb_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    name = "compression_api"
    admin_url = make_conninfo(timescaledb_server.url, dbname="postgres")
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(timescaledb_server.url, dbname=name)

    # The tables, then TimescaleDB set up with the calls deprecated since 2.18.
    old = StorageSettings(url=url, data_dir=tmp_path, timescaledb="off")
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await migrate(conn, old)
        for statement in _COMPRESSION_API_SETUP:
            await conn.execute(statement)
        await conn.commit()
    # Yesterday noon and 5, 10 and 11 days before it: one day chunk each.
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    noon -= timedelta(days=1)
    written = [
        Sample(link, "icmp", noon - timedelta(days=days, minutes=m), Outcome.UP, rtt_ms=days + m)
        for link in ("acme-hq", "globex-dc")
        for days in (0, 5, 10, 11)
        for m in range(0, 60, 5)
    ]
    db = await connect(old)
    try:
        assert await write_samples(db, written) == len(written)
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT count(compress_chunk(c))"
                " FROM show_chunks('samples', older_than => interval '7 days') c"
            )
            assert await cur.fetchone() == (2,)
    finally:
        await db.close()

    # The new version starts on it, as an upgrade does, with a shorter compress_after.
    config = tmp_path / "linkwatch.yaml"
    config.write_text(
        f"database: {{url: '{url}', timescaledb: require, compress_after: 3d}}\n"
        f"data_dir: {tmp_path}\n"
    )
    result = linkwatch("db", "migrate", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "applied 0 migrations"

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        assert await _policies(conn) == {
            "policy_compression": "3 days",
            "policy_retention": "395 days",
        }
        assert await _columnstore_layout(conn) == [("link_id,probe_id", "observed_at DESC")]
        # Every sample reads back as written, the converted ones included.
        cur = await conn.execute(
            "SELECT link_id, probe_id, observed_at, outcome, rtt_ms FROM samples"
            " ORDER BY link_id, observed_at"
        )
        assert await cur.fetchall() == sorted(
            ((s.link_id, s.probe_id, s.observed_at, s.outcome.value, s.rtt_ms) for s in written),
            key=lambda row: (row[0], row[2]),
        )
        # The policy now converts what is older than 3 days: the chunk 5 days back too
        # (the scheduler may have run it already; a run converts what is left).
        cur = await conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'"
        )
        (job_id,) = await cur.fetchone() or (None,)
        await conn.execute("CALL run_job(%s)", (job_id,))
        cur = await conn.execute(
            "SELECT range_end < now() - interval '3 days', is_compressed"
            " FROM timescaledb_information.chunks WHERE hypertable_name = 'samples'"
            " ORDER BY range_start"
        )
        assert await cur.fetchall() == [(True, True), (True, True), (True, True), (False, False)]
        cur = await conn.execute("SELECT count(*), sum(rtt_ms) FROM samples")
        assert await cur.fetchone() == (len(written), sum(s.rtt_ms or 0 for s in written))

    stats = linkwatch("db", "stats", "--config", str(config))
    assert stats.returncode == 0, stats.stderr
    row = next(line for line in stats.stdout.splitlines() if line.startswith("samples "))
    assert "3 chunks" in row


async def test_the_chunk_interval_follows_the_configured_probes(
    timescaledb_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    name = "chunk_sizing"
    admin_url = make_conninfo(timescaledb_server.url, dbname="postgres")
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        cur = await admin.execute("SELECT pg_size_bytes(current_setting('shared_buffers'))")
        (shared_buffers,) = await cur.fetchone() or (0,)
    url = make_conninfo(timescaledb_server.url, dbname=name)

    # Enough probes a second that 8-hour chunks' indexes would not fit half of this
    # server's shared_buffers, and 6-hour ones do.
    budget = shared_buffers / CHUNKS_IN_PLAY
    per_s = (budget / (8 * 3600) + budget / (6 * 3600)) / 2 / SAMPLE_INDEX_BYTES
    links = "".join(
        f"  - {{id: l{i}, customer: c, probes: [{{id: tcp, kind: tcp, host: 127.0.0.1,"
        f" port: 9, interval: 1s, timeout: 500ms}}]}}\n"
        for i in range(round(per_s))
    )

    def config(extra: str = "") -> Path:
        path = tmp_path / "linkwatch.yaml"
        path.write_text(
            f"database: {{url: '{url}', timescaledb: require{extra}}}\n"
            f"data_dir: {tmp_path}\n"
            "customers: [{id: c, name: C}]\n"
            f"links:\n{links}"
        )
        return path

    async def intervals() -> tuple[timedelta, list[timedelta]]:
        """(the interval new chunks get, the length of each chunk made so far)."""
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT time_interval FROM timescaledb_information.dimensions"
                " WHERE hypertable_name = 'samples'"
            )
            (interval,) = await cur.fetchone() or (None,)
            cur = await conn.execute(
                "SELECT range_end - range_start FROM timescaledb_information.chunks"
                " WHERE hypertable_name = 'samples' ORDER BY range_start"
            )
            return interval, [length for (length,) in await cur.fetchall()]

    async def store(at: datetime) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO samples (link_id, probe_id, observed_at, outcome)"
                " VALUES ('l0', 'tcp', %s, 'up')",
                (at,),
            )

    result = linkwatch("db", "migrate", "--config", str(config()))
    assert result.returncode == 0, result.stderr
    await store(datetime(2026, 11, 2, 13, 5, tzinfo=UTC))
    assert await intervals() == (timedelta(hours=6), [timedelta(hours=6)])
    stats = linkwatch("db", "stats", "--config", str(config()))
    assert stats.returncode == 0, stats.stderr
    assert _chunk_length(stats.stdout).startswith(f"6h (sized for {round(per_s)}.0 samples/s: ")

    # An explicit interval wins, for the chunks made from then on.
    result = linkwatch("db", "migrate", "--config", str(config(", chunk_interval: 2h")))
    assert result.returncode == 0, result.stderr
    await store(datetime(2026, 11, 3, 13, 5, tzinfo=UTC))
    assert await intervals() == (timedelta(hours=2), [timedelta(hours=6), timedelta(hours=2)])
    stats = linkwatch("db", "stats", "--config", str(config(", chunk_interval: 2h")))
    assert _chunk_length(stats.stdout) == "2h (database.chunk_interval)"


def _chunk_length(db_stats: str) -> str:
    line = next(x for x in db_stats.splitlines() if x.startswith("Chunk length "))
    return line.removeprefix("Chunk length ").strip()


async def test_an_import_lands_in_the_hypertable_and_corrects_compressed_chunks(
    pg_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKWATCH_PG_BINDIR", str(TIMESCALEDB_BINDIR))
    server = EmbeddedPostgres(pg_data_dir, durable=False)
    settings = StorageSettings(
        url=server.start(),
        data_dir=pg_data_dir,
        timescaledb="require",
        chunk_interval=timedelta(hours=6),
    )
    link = Link.model_validate(
        {
            "id": "acme-hq",
            "customer": "acme",
            "probes": [{"id": "icmp", "kind": "icmp", "host": "127.0.0.1", "interval": "1m"}],
        }
    )
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(days=3)
    times = SampleTimes(horizon=timedelta(days=30), skew=timedelta(minutes=5))

    def csv_lines(outcome_at: Any) -> list[bytes]:
        rows = ["time,link,probe,outcome,rtt_ms,loss_pct"]
        for minute in range(0, 24 * 60, 1):
            at = start + timedelta(minutes=minute)
            up = outcome_at(minute) == "up"
            rows.append(f"{at.isoformat()},acme-hq,icmp,{outcome_at(minute)},"
                        f"{'1.5' if up else ''},{'0' if up else '100'}")  # fmt: skip
        return [f"{row}\n".encode() for row in rows]

    async def imported(lines: list[bytes], *, replace: bool = False) -> Any:
        staged = io.BytesIO()
        assert check_file(lines, [link], times, now, staged).ok
        return await import_samples(db, staged, [link], replace=replace)

    db = await connect(settings)
    try:
        first = await imported(csv_lines(lambda m: "up"))
        assert (first.rows, first.stored) == (1440, 1440)
        async with db.connection() as conn:
            assert await _convert_to_columnstore(conn, timedelta(days=1)) >= 4
        # The other monitor's corrected export: an hour down, in compressed chunks.
        corrected = csv_lines(lambda m: "down" if 600 <= m < 660 else "up")
        refused = await imported(corrected)
        assert refused.refused
        assert refused.differing is not None
        assert refused.differing.count == 60
        fixed = await imported(corrected, replace=True)
        assert (fixed.replaced, fixed.stored) == (60, 0)
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT starts_at, ends_at FROM link_states WHERE status = 'down'"
            )
            assert await cur.fetchall() == [
                (start + timedelta(minutes=600), start + timedelta(minutes=660))
            ]
            cur = await conn.execute("SELECT count(*) FROM samples WHERE outcome = 'down'")
            assert await cur.fetchone() == (60,)
    finally:
        await db.close()
        server.stop()
