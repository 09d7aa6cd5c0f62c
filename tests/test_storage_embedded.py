"""The embedded PostgreSQL: start, reuse, restart after a crash (also in place, for the
supervisor), stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from collector.embedded import EmbeddedPostgres, _open_up_tree
from kernel.errors import DatabaseError

REPO = Path(__file__).resolve().parents[1]


def _query_one(url: str, text: str) -> object:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(text).fetchone()
        assert row is not None
        return row[0]


def test_start_creates_the_linkwatch_database_on_a_unix_socket_only(pg_data_dir: Path) -> None:
    with EmbeddedPostgres(pg_data_dir, durable=False) as server:
        assert server.is_running()
        assert _query_one(server.url, "SELECT current_database()") == "linkwatch"
        assert _query_one(server.url, "SHOW listen_addresses") == ""
        assert (pg_data_dir / "postgres" / "data" / "PG_VERSION").is_file()
    assert not server.is_running()


def test_restart_keeps_data_and_url(pg_data_dir: Path) -> None:
    server = EmbeddedPostgres(pg_data_dir, durable=False)
    url = server.start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
    server.stop()
    assert server.start() == url
    assert _query_one(url, "SELECT count(*) FROM kept") == 0
    server.stop()


def test_deep_data_dir_gets_a_short_socket_directory(pg_data_dir: Path) -> None:
    deep = pg_data_dir / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    for path in (deep.parent, deep):
        path.chmod(0o711)
    server = EmbeddedPostgres(deep, durable=False)
    url = server.start()
    try:
        socket_dir = Path(_query_one(url, "SHOW unix_socket_directories"))  # type: ignore[arg-type]
        assert len(str(socket_dir)) < 40
        assert socket_dir.stat().st_mode & 0o077 == 0  # trust auth: nobody else may connect
    finally:
        server.stop()
    assert not socket_dir.exists()
    assert server.start() == url  # same short directory again: pools keep working
    server.stop()


def test_server_left_running_by_an_exited_process_is_reused_and_stopped(
    pg_data_dir: Path,
) -> None:
    script = (
        "import sys; from pathlib import Path; from collector.embedded import EmbeddedPostgres;"
        "print(EmbeddedPostgres(Path(sys.argv[1]), durable=False).start())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(pg_data_dir)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=60,
    )
    server = EmbeddedPostgres(pg_data_dir, durable=False)
    assert server.is_running()
    assert server.start() == done.stdout.strip()
    server.stop()  # its starter is gone, so this process owns it now
    assert not server.is_running()


def test_start_after_sigkill_recovers_from_the_stale_pid_file(pg_data_dir: Path) -> None:
    server = EmbeddedPostgres(pg_data_dir, durable=False)
    url = server.start()
    pid_file = pg_data_dir / "postgres" / "data" / "postmaster.pid"
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_file.exists()  # stale
    fresh = EmbeddedPostgres(pg_data_dir, durable=False)
    assert fresh.start() == url
    assert _query_one(url, "SELECT 1") == 1
    fresh.stop()


def test_unknown_binaries_directory_is_a_clear_error(
    pg_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKWATCH_PG_BINDIR", str(pg_data_dir))
    with pytest.raises(DatabaseError, match=r"LINKWATCH_PG_BINDIR=.*database\.url"):
        EmbeddedPostgres(pg_data_dir).start()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_root_with_an_untraversable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    # pytest's tmp directories are 0700 root: the server's unprivileged user cannot enter.
    with pytest.raises(DatabaseError, match=r"cannot enter .*pytest-of-root"):
        EmbeddedPostgres(tmp_path, durable=False).start()
    assert oct(tmp_path.parent.parent.stat().st_mode & 0o777) == "0o700"  # left as it was


def test_pgserver_install_tree_is_opened_up_for_the_server_user(tmp_path: Path) -> None:
    tree = tmp_path / "pginstall"
    (tree / "bin").mkdir(parents=True)
    exe, header = tree / "bin" / "postgres", tree / "header.h"
    exe.write_text("")
    header.write_text("")
    for path, mode in ((tree, 0o700), (tree / "bin", 0o700), (exe, 0o700), (header, 0o600)):
        path.chmod(mode)
    _open_up_tree(tree)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in (tree, tree / "bin", exe, header)}
    assert modes == {"pginstall": "0o705", "bin": "0o705", "postgres": "0o705", "header.h": "0o604"}
    assert oct(tmp_path.stat().st_mode & 0o777) != "0o705"  # parents are never touched


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root-run Linkwatch copies the binaries")
def test_root_runs_a_reachable_copy_of_binaries_it_cannot_share(
    tmp_path: Path, pg_data_dir: Path
) -> None:
    """A venv under root's 0700 home: the server account cannot reach the wheel's
    binaries, so a copy under the shared directory runs instead."""
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("pgserver")
    assert spec is not None
    assert spec.origin is not None
    site = Path(spec.origin).parent.parent
    private = tmp_path / "private-home" / "site"  # pytest's tmp dirs are 0700 as root
    private.mkdir(parents=True)
    (tmp_path / "private-home").chmod(0o700)
    shutil.copytree(site / "pgserver", private / "pgserver")
    shutil.copytree(site / "pgserver.libs", private / "pgserver.libs")
    shared = pg_data_dir / "shared"
    script = (
        "from pathlib import Path; from collector.embedded import EmbeddedPostgres;"
        f"server = EmbeddedPostgres(Path({str(pg_data_dir)!r}), durable=False);"
        "server.start(); print(server.binaries.source, server.binaries.bin_dir); server.stop()"
    )
    env = {**os.environ, "PYTHONPATH": f"{private}:{REPO}", "LINKWATCH_SHARED_DIR": str(shared)}
    env.pop("LINKWATCH_PG_BINDIR", None)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    source, bin_dir = done.stdout.strip().rsplit(" ", 1)
    assert source == "pgserver (shared copy)"
    assert Path(bin_dir).is_relative_to(shared)


def _kill_postmaster(server: EmbeddedPostgres, pg_data_dir: Path) -> int:
    pid_file = pg_data_dir / "postgres" / "data" / "postmaster.pid"
    postmaster = int(pid_file.read_text().split()[0])
    os.kill(postmaster, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.is_running()
    return postmaster


def _restart(server: EmbeddedPostgres) -> int:
    """Restart as the supervisor does: the killed server's backends may hold its shared
    memory for a moment, so a first attempt can fail."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return server.restart()
        except DatabaseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_restart_after_kill_9_keeps_the_url_and_every_committed_row(pg_data_dir: Path) -> None:
    server = EmbeddedPostgres(pg_data_dir)  # durable: crash recovery replays the WAL
    url = server.start()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (1), (2)")
        killed = _kill_postmaster(server, pg_data_dir)
        assert _restart(server) != killed
        assert server.url == url
        assert _query_one(url, "SELECT count(*) FROM kept") == 2
        assert server.restart() == _restart(server)  # running already: nothing to do
    finally:
        server.stop()
    assert not server.is_running()  # still this process's server to stop


def test_a_restart_that_fails_says_why_in_one_line(pg_data_dir: Path) -> None:
    server = EmbeddedPostgres(pg_data_dir, durable=False)
    server.start()
    conf = pg_data_dir / "postgres" / "data" / "postgresql.conf"
    try:
        _kill_postmaster(server, pg_data_dir)
        conf.rename(conf.with_suffix(".away"))
        with pytest.raises(DatabaseError) as caught:
            server.restart()
        message = str(caught.value)
        assert "\n" not in message
        assert "postgresql.conf" in message  # the server's own complaint
        assert "server.log" in message  # and where to read more
    finally:
        if conf.with_suffix(".away").exists():
            conf.with_suffix(".away").rename(conf)
    _restart(server)
    server.stop()
