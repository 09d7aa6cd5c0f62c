"""`linkwatch run` as an operator runs it: a loopback config, real ICMP and TCP probes,
the embedded PostgreSQL (and TimescaleDB where installed), and the portal over HTTP."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from collector.embedded import BINDIR_ENV
from tests.helpers import (
    FAST_HASHER,
    TIMESCALEDB_BINDIR,
    TIMESCALEDB_SKIP_REASON,
    board_statuses,
    browser,
    free_port,
    login,
    start_linkwatch,
    stopped_after,
    wait_for,
)

PASSWORD = "e2e-password"


TIMESCALEDB = TIMESCALEDB_BINDIR


def write_config(directory: Path, port: int, closed_port: int) -> Path:
    hashed = FAST_HASHER.hash(PASSWORD)
    config = directory / "linkwatch.yaml"
    config.write_text(
        f"""\
data_dir: {directory}
portal: {{listen: "127.0.0.1:{port}", refresh: 5s}}
customers:
  - {{id: alpha, name: Alpha GmbH, timezone: Europe/Berlin}}
  - {{id: beta, name: Beta Ltd, timezone: Europe/London}}
links:
  - id: alpha-hq
    customer: alpha
    description: Alpha HQ fibre
    probes:
      - {{id: icmp, kind: icmp, host: 127.0.0.1, interval: 1s, count: 2, spacing: 50ms,
          timeout: 500ms}}
  - id: beta-dc
    customer: beta
    description: Beta data centre
    probes:
      - {{id: tcp, kind: tcp, host: 127.0.0.1, port: {closed_port}, interval: 1s,
          timeout: 500ms}}
users:
  - {{name: noc, role: ops, password_hash: "{hashed}"}}
  - {{name: alpha, role: customer, customer: alpha, password_hash: "{hashed}"}}
"""
    )
    return config


@pytest.fixture(
    params=[
        pytest.param(None, id="postgresql"),
        pytest.param(
            TIMESCALEDB,
            id="timescaledb",
            marks=pytest.mark.skipif(
                TIMESCALEDB is None,
                reason=TIMESCALEDB_SKIP_REASON,
            ),
        ),
    ]
)
def bindir(request: pytest.FixtureRequest) -> Iterator[Path | None]:
    return request.param


def sample_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT link_id, count(*) FROM samples GROUP BY link_id").fetchall()
    return {link: count for link, count in rows}


async def test_run_probes_stores_and_serves_until_sigterm(
    pg_data_dir: Path, bindir: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if bindir is not None:
        monkeypatch.setenv(BINDIR_ENV, str(bindir))
    port, closed_port = free_port(), free_port()
    config = write_config(pg_data_dir, port, closed_port)
    log = pg_data_dir / "linkwatch.log"
    proc = start_linkwatch("run", "--config", str(config), log=log)
    base = f"http://127.0.0.1:{port}"
    with stopped_after(proc, log):
        await asyncio.to_thread(wait_for, "the portal", lambda: _healthy(base), 60, proc, log)
        url = _embedded_url(pg_data_dir)
        await asyncio.to_thread(
            wait_for,
            "samples of both links",
            lambda: all(sample_counts(url).get(link, 0) >= 3 for link in ("alpha-hq", "beta-dc")),
            30,
            proc,
            log,
        )
        if bindir is not None:
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM timescaledb_information.hypertables"
                    " WHERE hypertable_name = 'samples'"
                ).fetchone()
            assert row == (1,), "samples should be a hypertable when TimescaleDB is present"

        async with browser() as session:
            board = await login(session, base, "noc", PASSWORD)
            # Worst first: the link whose port is closed is down, loopback ICMP is up.
            assert board_statuses(board) == [("beta-dc", "down"), ("alpha-hq", "up")]
            assert "Beta data centre" in board
            assert "Alpha HQ fibre" in board

        async with browser() as session:
            board = await login(session, base, "alpha", PASSWORD)
            assert board_statuses(board) == [("alpha-hq", "up")]
            assert "beta-dc" not in board  # a customer sees only its own links
            async with session.get(f"{base}/links/beta-dc") as response:
                assert response.status == 404

        before = sample_counts(url)
    output = log.read_text()
    assert "Traceback" not in output
    assert "linkwatch stopped" in output
    # It stopped the embedded server it started.
    assert not (pg_data_dir / "postgres" / "data" / "postmaster.pid").exists()
    # Restart the server to read what was flushed on the way out.
    from collector.embedded import EmbeddedPostgres

    with EmbeddedPostgres(pg_data_dir) as server:
        after = sample_counts(server.url)
    assert all(after[link] >= before[link] for link in before)


def _healthy(base: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def _embedded_url(data_dir: Path) -> str:
    """The running server's URL, read the way a second Linkwatch process would."""
    from collector.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(data_dir)
    url = server.start()  # shares the server linkwatch started; leaves it running
    return url


def test_sighup_applies_a_valid_config_and_keeps_the_running_one_otherwise(
    pg_data_dir: Path,
) -> None:
    port, closed_port = free_port(), free_port()
    config = write_config(pg_data_dir, port, closed_port)
    original = config.read_text()
    log = pg_data_dir / "linkwatch.log"
    proc = start_linkwatch("run", "--config", str(config), log=log)
    with stopped_after(proc, log):
        wait_for("the portal", lambda: _healthy(f"http://127.0.0.1:{port}"), 60, proc, log)
        url = _embedded_url(pg_data_dir)
        wait_for("samples", lambda: sample_counts(url).get("alpha-hq", 0) >= 2, 30, proc, log)

        # A third link appears in the file: after SIGHUP it is probed too.
        config.write_text(
            original.replace(
                "users:",
                "  - id: alpha-dr\n    customer: alpha\n    probes:\n"
                "      - {id: icmp, kind: icmp, host: 127.0.0.3, interval: 1s, count: 1,"
                " timeout: 500ms}\nusers:",
            )
        )
        proc.send_signal(signal.SIGHUP)
        wait_for(
            "the new link's samples",
            lambda: sample_counts(url).get("alpha-dr", 0) >= 2,
            30,
            proc,
            log,
        )

        # A broken file is refused with its problems, and probing goes on as before.
        config.write_text(original.replace("interval: 1s", "interval: 1x", 1))
        proc.send_signal(signal.SIGHUP)
        wait_for(
            "the rejection", lambda: "config reload rejected" in log.read_text(), 30, proc, log
        )
        assert "'1x' is not a duration" in log.read_text()
        before = sample_counts(url)["alpha-dr"]
        wait_for("more samples", lambda: sample_counts(url)["alpha-dr"] > before + 1, 30, proc, log)
