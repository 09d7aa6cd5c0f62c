"""A private PostgreSQL server: Linkwatch's default when no database URL is configured.

`EmbeddedPostgres` finds PostgreSQL binaries, creates a cluster under
`<data_dir>/postgres`, starts it listening only on a unix socket with trust
authentication, creates the `linkwatch` database and stops the server again. `restart()`
starts it again after it stopped on its own, on the same socket, so that connection URLs
and pools made for it keep working (`collector.database` decides when).

It must never listen on TCP, change permissions of anything but its own cluster and
pgserver's install directory, or register atexit hooks: whoever calls `start()` owns the
server and calls `stop()`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from kernel.errors import DatabaseError, NoDatabase

logger = logging.getLogger(__name__)

BINDIR_ENV = "LINKWATCH_PG_BINDIR"
# Where a root-run Linkwatch keeps a copy of pgserver's binaries that the unprivileged
# server account can reach when the venv itself is not reachable (e.g. under /root).
SHARED_BINARIES = Path(os.environ.get("LINKWATCH_SHARED_DIR", "/var/lib/linkwatch"))
DATABASE = "linkwatch"
SUPERUSER = "linkwatch"
# Nothing else listens in our private socket directory, so the standard port is free.
PORT = 5432
# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
_SOCKET_PATH_MAX = 107
_START_TIMEOUT_S = 60
_SYSTEM_USERS = ("postgres", "linkwatch")
_HOW_TO_CONNECT = (
    "point Linkwatch at a PostgreSQL server instead: set database.url in the config "
    "or the LINKWATCH_DATABASE_URL environment variable"
)


@dataclass(frozen=True, slots=True)
class PgBinaries:
    """One PostgreSQL installation that can run the embedded cluster."""

    bin_dir: Path
    source: str  # where it was found: "LINKWATCH_PG_BINDIR", "pgserver" or "system"
    major: int
    timescaledb: bool  # the extension's control file and library are installed
    # pgserver's install tree, whose permissions we may widen; None for anything else.
    own_tree: Path | None = None

    def exe(self, name: str) -> str:
        return str(self.bin_dir / name)


@dataclass(frozen=True, slots=True)
class _ServerUser:
    """The unprivileged account the server runs as when Linkwatch runs as root."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    def may(self, st: os.stat_result, user_bit: int, group_bit: int, other_bit: int) -> bool:
        if st.st_uid == self.uid:
            return bool(st.st_mode & user_bit)
        if st.st_gid in self.groups:
            return bool(st.st_mode & group_bit)
        return bool(st.st_mode & other_bit)


def find_binaries() -> PgBinaries:
    """Pick PostgreSQL binaries: LINKWATCH_PG_BINDIR, then pgserver's, then the system's."""
    override = os.environ.get(BINDIR_ENV)
    if override:
        bin_dir = Path(override)
        if not _has_server_binaries(bin_dir):
            raise DatabaseError(
                f"{BINDIR_ENV}={override} does not contain initdb, pg_ctl and postgres; "
                f"set it to a PostgreSQL bin directory, or {_HOW_TO_CONNECT}"
            )
        return _describe(bin_dir, BINDIR_ENV)

    # find_spec locates pgserver without importing it: its import has side effects.
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            tree = Path(location) / "pginstall"
            if _has_server_binaries(tree / "bin"):
                return _describe(tree / "bin", "pgserver", own_tree=tree)

    candidates = []
    for bin_dir in Path("/usr/lib/postgresql").glob("*/bin"):
        if bin_dir.parent.name.isdigit() and _has_server_binaries(bin_dir):
            candidates.append((int(bin_dir.parent.name), bin_dir))
    if candidates:
        return _describe(max(candidates)[1], "system")

    raise DatabaseError(
        "no PostgreSQL binaries found for the embedded database (looked at "
        f"{BINDIR_ENV}, the pgserver package and /usr/lib/postgresql/*/bin); "
        f"install pgserver or PostgreSQL, or {_HOW_TO_CONNECT}"
    )


def _has_server_binaries(bin_dir: Path) -> bool:
    return all((bin_dir / name).is_file() for name in ("initdb", "pg_ctl", "postgres"))


def _describe(bin_dir: Path, source: str, own_tree: Path | None = None) -> PgBinaries:
    version = _output([str(bin_dir / "postgres"), "--version"])
    match = re.search(r"(\d+)(?:\.\d+)?", version)
    if match is None:
        raise DatabaseError(f"cannot tell the PostgreSQL version of {bin_dir}: {version!r}")
    share_dir, lib_dir = bin_dir.parent / "share", bin_dir.parent / "lib"
    if (bin_dir / "pg_config").is_file():
        share, lib = _output([str(bin_dir / "pg_config"), "--sharedir", "--pkglibdir"]).split()
        share_dir, lib_dir = Path(share), Path(lib)
    timescaledb = (share_dir / "extension" / "timescaledb.control").is_file() and any(
        lib_dir.glob("timescaledb*.so")
    )
    return PgBinaries(bin_dir, source, int(match.group(1)), timescaledb, own_tree)


def _output(args: list[str]) -> str:
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, check=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatabaseError(f"cannot run {args[0]}: {exc}") from exc
    return done.stdout.strip()


class EmbeddedPostgres:
    """A PostgreSQL cluster in `<data_dir>/postgres`, reachable only through a unix socket.

    `start()` is idempotent and reuses a server an earlier process left running. A server
    this instance started (or adopted from a process that has died) is stopped by
    `stop()`; one still used by another live process is left running for it.
    `durable=False` skips fsync entirely: for tests only, a crash can corrupt the cluster.
    """

    def __init__(
        self, data_dir: Path, *, durable: bool = True, bin_dir: Path | None = None
    ) -> None:
        self.root = Path(data_dir).absolute() / "postgres"
        self.pgdata = self.root / "data"
        self.log_file = self.root / "server.log"
        self.durable = durable
        self._bin_dir = bin_dir
        self._binaries: PgBinaries | None = None
        self._user: _ServerUser | None = None
        self._url: str | None = None
        self._socket_dir: Path | None = None
        self._owner = False

    # -- public -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The URL of the `linkwatch` database; valid after `start()`."""
        if self._url is None:
            raise RuntimeError("EmbeddedPostgres.start() has not been called")
        return self._url

    @property
    def binaries(self) -> PgBinaries:
        if self._binaries is None:
            if self._bin_dir is not None:
                if not _has_server_binaries(self._bin_dir):
                    raise DatabaseError(f"{self._bin_dir} holds no PostgreSQL server binaries")
                self._binaries = _describe(self._bin_dir, "argument")
            else:
                self._binaries = find_binaries()
        return self._binaries

    def start(self, *, create: bool = True) -> str:
        """Start (or reuse) the server and return a psycopg URL for the `linkwatch` database.

        `create` False: raise NoDatabase instead of creating the cluster or the database
        when they do not exist (without a cluster, touching nothing on disk; the caller
        stops a server this started for a cluster without the database)."""
        began = time.monotonic()
        if not create and not (self.pgdata / "PG_VERSION").is_file():
            raise NoDatabase(f"there is no database in {self.root}: nothing has been stored there")
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            binaries = self.binaries
            self._user = _server_user()
            binaries = self._prepare(binaries)
            initialised = self._ensure_cluster(binaries)
            running = self._running_postmaster()
            if running is not None:
                pid, socket_dir, port = running
                self._owner = self._adopt()
                action = "reused" if self._owner else "shared"
            else:
                pid, socket_dir, port = self._start_server(binaries)
                self._owner = True
                action = "started"
            if self._owner:
                self._owner_file.write_text(f"{os.getpid()}\n")
            self._socket_dir = socket_dir
            self._url = _url(socket_dir, port, DATABASE)
            self._ensure_database(_url(socket_dir, port, "postgres"), create=create)
        logger.info(
            "embedded postgres %s data_dir=%s pid=%s version=%s binaries=%s socket_dir=%s "
            "timescaledb=%s initdb=%s took_ms=%d",
            action,
            self.root,
            pid,
            binaries.major,
            binaries.source,
            socket_dir,
            binaries.timescaledb,
            initialised,
            (time.monotonic() - began) * 1000,
        )
        return self._url

    def restart(self) -> int:
        """Start the server again after it stopped on its own (a crash, `kill -9`) and
        return its pid; a no-op if it runs. Crash recovery replays the WAL, so every
        committed row is still there. Logs nothing: the caller reports each attempt."""
        if self._url is None:
            raise RuntimeError("EmbeddedPostgres.start() has not been called")
        with self._locked():
            running = self._running_postmaster()
            if running is not None:
                # Another process sharing the cluster restarted it first: whoever owns
                # it now stays its owner, as in start().
                self._owner = self._adopt()
            else:
                try:
                    running = self._start_server(self.binaries)
                except DatabaseError:
                    # One line for the attempt's log entry: the server's own last word.
                    raise DatabaseError(
                        f"the embedded PostgreSQL in {self.root} did not start: "
                        f"{_last_complaint(self.log_file)} (server log: {self.log_file})"
                    ) from None
                self._owner = True
            pid, socket_dir, port = running
            if _url(socket_dir, port, DATABASE) != self._url:
                # A remembered socket directory taken over by someone else: connections
                # made for the old URL would never reach this server.
                raise DatabaseError(
                    f"the embedded PostgreSQL in {self.root} came back on {socket_dir} "
                    f"instead of {self._socket_dir}; restart Linkwatch"
                )
            if self._owner:
                self._owner_file.write_text(f"{os.getpid()}\n")
        return pid

    def stop(self) -> None:
        """Stop the server with `pg_ctl stop -m fast`, unless another live process uses it."""
        if not self.pgdata.is_dir():
            return
        began = time.monotonic()
        with self._locked():
            self._user = self._user or _server_user()
            if self._running_postmaster() is None:
                return
            if not self._owner:
                logger.info(
                    "embedded postgres left running for its owner data_dir=%s owner_pid=%s",
                    self.root,
                    self._owner_pid(),
                )
                return
            code, out = self._pg(
                ["pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60"]
            )
            if code != 0:
                raise DatabaseError(f"could not stop the embedded PostgreSQL in {self.root}: {out}")
            self._owner_file.unlink(missing_ok=True)
            self._owner = False
            if self._socket_dir is not None and self._socket_dir != self.root / "run":
                # Our short directory under /tmp; start() recreates the same path.
                with contextlib.suppress(OSError):
                    self._socket_dir.rmdir()
        logger.info(
            "embedded postgres stopped data_dir=%s took_ms=%d",
            self.root,
            (time.monotonic() - began) * 1000,
        )

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").is_file():
            return False
        with self._locked():
            self._user = self._user or _server_user()
            return self._running_postmaster() is not None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- preparing the cluster ------------------------------------------------------------

    @property
    def _owner_file(self) -> Path:
        return self.root / "owner.pid"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Two Linkwatch processes sharing a data dir must not both initdb or start.
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _prepare(self, binaries: PgBinaries) -> PgBinaries:
        """Make the binaries and the cluster directory usable by the server's account;
        return the binaries to run, which may be a reachable copy of pgserver's."""
        user = self._user
        if user is None:
            return binaries
        if binaries.own_tree is not None:
            tree = binaries.own_tree
            if not _may_traverse(tree.parent, user):
                # A venv under root's 0700 home: the server's account cannot reach the
                # wheel's binaries, so run a copy of them from a shared location.
                tree = _shared_copy(tree, binaries.major)
                binaries = _describe(tree / "bin", "pgserver (shared copy)", own_tree=tree)
                self._binaries = binaries
            _open_up_tree(tree)
        else:
            _check_traversable(binaries.bin_dir, user, "the PostgreSQL binaries")
        _check_traversable(self.root.parent, user, "the data directory")
        if self.root.stat().st_uid != user.uid:
            for path in [self.root, *self.root.rglob("*")]:
                os.chown(path, user.uid, user.gid, follow_symlinks=False)
        self.root.chmod(0o700)
        return binaries

    def _ensure_cluster(self, binaries: PgBinaries) -> bool:
        """initdb on first use; refuse a cluster made by another major version."""
        version_file = self.pgdata / "PG_VERSION"
        if version_file.is_file():
            made_by = int(version_file.read_text().strip().split(".")[0])
            if made_by != binaries.major:
                raise DatabaseError(
                    f"the embedded database in {self.pgdata} was created by PostgreSQL "
                    f"{made_by} but the binaries in {binaries.bin_dir} are PostgreSQL "
                    f"{binaries.major}; set {BINDIR_ENV} to a PostgreSQL {made_by} bin "
                    "directory or use another data_dir"
                )
            return False
        args = [
            "initdb",
            "-D",
            str(self.pgdata),
            f"--username={SUPERUSER}",
            "--auth=trust",  # safe: only reachable through a socket in a 0700 directory
            "--encoding=UTF8",
            "--locale=C",
        ]
        if not self.durable:
            args.append("--no-sync")
        code, out = self._pg(args)
        if code != 0:
            raise DatabaseError(f"initdb failed for the embedded database in {self.pgdata}: {out}")
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            # Settings Linkwatch owns live in their own file, rewritten at every start.
            conf.write("\ninclude_if_exists = 'linkwatch.conf'\n")
        return True

    def _socket_directory(self) -> Path:
        preferred = self.root / "run"
        if len(os.fsencode(preferred / f".s.PGSQL.{PORT}")) <= _SOCKET_PATH_MAX:
            preferred.mkdir(mode=0o700, exist_ok=True)
            self._give(preferred)
            return preferred
        # Deep data dirs (pytest's tmp paths) exceed the socket path limit: use a short
        # private directory under /tmp, remembered so the URL stays the same across restarts.
        record = self.root / "socket_dir"
        if record.is_file():
            remembered = Path(record.read_text().strip())
            if self._claim(remembered):
                return remembered
        base = "/tmp" if os.path.isdir("/tmp") else None  # noqa: S108 - TMPDIR may be long
        created = Path(tempfile.mkdtemp(prefix="lwpg-", dir=base))
        self._give(created)
        record.write_text(f"{created}\n")
        self._give(record)
        if len(os.fsencode(created / f".s.PGSQL.{PORT}")) > _SOCKET_PATH_MAX:
            raise DatabaseError(f"no socket directory short enough for {self.root}")
        return created

    def _claim(self, path: Path) -> bool:
        """Recreate a remembered socket directory, or accept it if it is still ours."""
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            st = path.lstat()
            owners = {os.geteuid()} | ({self._user.uid} if self._user else set())
            return stat.S_ISDIR(st.st_mode) and st.st_uid in owners and not st.st_mode & 0o077
        except OSError:
            return False
        self._give(path)
        return True

    def _give(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.uid, self._user.gid)

    # -- running the server ---------------------------------------------------------------

    def _start_server(self, binaries: PgBinaries) -> tuple[int, Path, int]:
        socket_dir = self._socket_directory()
        lines = [
            "# Written by Linkwatch at every start of the embedded server; edits are lost.",
            "listen_addresses = ''",
            f"port = {PORT}",
            f"unix_socket_directories = '{_conf_quote(socket_dir)}'",
        ]
        if binaries.timescaledb:
            lines += [
                "shared_preload_libraries = 'timescaledb'",
                # The monitor must not phone home; the tests' network is loopback only.
                "timescaledb.telemetry_level = off",
            ]
        if not self.durable:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        conf = self.pgdata / "linkwatch.conf"
        conf.write_text("\n".join(lines) + "\n")
        self._give(conf)
        code, out = self._pg(
            [
                "pg_ctl",
                "start",
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(_START_TIMEOUT_S),
                "-s",
            ],
            timeout=_START_TIMEOUT_S + 10,
        )
        running = self._running_postmaster() if code == 0 else None
        if running is None:
            raise DatabaseError(
                f"the embedded PostgreSQL in {self.root} did not start: {out.strip()}\n"
                f"{_tail(self.log_file)}\n{_HOW_TO_CONNECT}"
            )
        return running

    def _running_postmaster(self) -> tuple[int, Path, int] | None:
        """(pid, socket dir, port) of the server running on our cluster, if any."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.is_file():
            return None
        # pg_ctl status tells a live server from a stale pid file left by SIGKILL.
        code, _ = self._pg(["pg_ctl", "status", "-D", str(self.pgdata)])
        if code != 0:
            return None
        try:
            lines = pid_file.read_text().splitlines()
            return int(lines[0]), Path(lines[4]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None  # the server is just starting or stopping

    def _adopt(self) -> bool:
        """Whether to own a running server: yes unless its starter is alive and not us."""
        owner = self._owner_pid()
        if owner is None or owner == os.getpid():
            return True
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _owner_pid(self) -> int | None:
        try:
            return int(self._owner_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _ensure_database(self, admin_url: str, *, create: bool = True) -> None:
        try:
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
                found = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
                ).fetchone()
                if found is None and not create:
                    raise NoDatabase(
                        f"the PostgreSQL in {self.root} has no {DATABASE} database: "
                        "nothing has been stored there"
                    )
                if found is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        except psycopg.Error as exc:
            raise DatabaseError(
                f"the embedded PostgreSQL in {self.root} is running but does not accept "
                f"connections ({exc}); if no PostgreSQL runs for this data_dir, remove "
                f"{self.pgdata / 'postmaster.pid'}"
            ) from exc

    def _pg(self, args: list[str], *, timeout: float = 60) -> tuple[int, str]:
        """Run a PostgreSQL program as the server's account; return (exit code, output)."""
        command = [self.binaries.exe(args[0]), *args[1:]]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        extra: dict[str, Any] = {}
        if self._user is not None:
            extra = {"user": self._user.uid, "group": self._user.gid}
            extra["extra_groups"] = list(self._user.groups)
        # A file, not a pipe: the postmaster pg_ctl leaves behind would hold a pipe open.
        with tempfile.TemporaryFile() as out:
            try:
                done = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd="/",
                    timeout=timeout,
                    # Its own session, so a Ctrl-C meant for Linkwatch does not kill the
                    # server before Linkwatch has flushed what it holds and stopped it.
                    start_new_session=True,
                    check=False,
                    **extra,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise DatabaseError(f"cannot run {command[0]}: {exc}") from exc
            out.seek(0)
            return done.returncode, out.read().decode(errors="replace")


def _server_user() -> _ServerUser | None:
    """PostgreSQL refuses to run as root: pick (or create) an unprivileged account."""
    if os.geteuid() != 0:
        return None
    for name in _SYSTEM_USERS:
        with contextlib.suppress(KeyError):
            return _account(pwd.getpwnam(name))
    try:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "linkwatch",
            ],
            capture_output=True,
            check=False,
            timeout=30,
        )
        return _account(pwd.getpwnam("linkwatch"))
    except (OSError, subprocess.SubprocessError, KeyError) as exc:
        raise DatabaseError(
            "running as root, the embedded PostgreSQL needs an unprivileged account and "
            f"creating the system user 'linkwatch' failed ({exc}); create it, run Linkwatch "
            f"as another user, or {_HOW_TO_CONNECT}"
        ) from exc


def _account(entry: pwd.struct_passwd) -> _ServerUser:
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return _ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def _may_traverse(path: Path, user: _ServerUser) -> bool:
    return all(
        user.may(directory.stat(), stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)
        for directory in [path, *path.parents]
    )


def _shared_copy(tree: Path, major: int) -> Path:
    """Copy pgserver's install tree (about 35 MB) once to SHARED_BINARIES, keyed by the
    tree's location and version so that upgrades and other venvs get their own copy.

    The wheel's binaries find their libraries through an rpath relative to themselves
    (``$ORIGIN/../../../pgserver.libs``), so the copy keeps that layout."""
    key = hashlib.sha256(str(tree).encode()).hexdigest()[:12]
    target = SHARED_BINARIES / f"pgserver-{major}-{key}"
    copied_tree = target / "pgserver" / "pginstall"
    if not _has_server_binaries(copied_tree / "bin"):
        SHARED_BINARIES.mkdir(parents=True, exist_ok=True)
        SHARED_BINARIES.chmod(0o755)
        staging = Path(tempfile.mkdtemp(prefix=".copy-", dir=SHARED_BINARIES))
        try:
            shutil.copytree(tree, staging / "pgserver" / "pginstall", symlinks=True)
            libs = tree.parent.parent / "pgserver.libs"
            if libs.is_dir():
                shutil.copytree(libs, staging / "pgserver.libs", symlinks=True)
            _open_up_tree(staging)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise DatabaseError(
                f"cannot copy the PostgreSQL binaries from {tree} to {target}, "
                f"where the embedded server's account can reach them: {exc}"
            ) from exc
        logger.info("embedded postgres binaries copied from=%s to=%s", tree, target)
    return copied_tree


def _check_traversable(path: Path, user: _ServerUser, what: str) -> None:
    """Raise if `user` cannot reach `path`; never change the permissions of its parents."""
    for directory in reversed([path, *path.parents]):
        if not user.may(directory.stat(), stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
            raise DatabaseError(
                f"the embedded PostgreSQL runs as the unprivileged user {user.name!r} "
                f"(PostgreSQL refuses root), which cannot enter {directory} to reach {what} "
                f"at {path}; Linkwatch does not change permissions outside its own "
                f"directories: move the venv or data_dir elsewhere, set {BINDIR_ENV} to "
                f"binaries it can reach, or {_HOW_TO_CONNECT}"
            )


def _open_up_tree(tree: Path) -> None:
    """Let every user read pgserver's install tree (wheels may unpack it root-only)."""
    for path in [tree, *tree.rglob("*")]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        wanted = stat.S_IROTH
        if stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IXUSR:
            wanted |= stat.S_IXOTH
        if st.st_mode & wanted != wanted:
            path.chmod(stat.S_IMODE(st.st_mode) | wanted)


def _url(socket_dir: Path, port: int, dbname: str) -> str:
    return f"postgresql://{SUPERUSER}@/{dbname}?host={quote(str(socket_dir), safe='')}&port={port}"


def _conf_quote(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace("'", "''")


def _last_complaint(path: Path) -> str:
    """The server log's last FATAL or PANIC line, else its last line."""
    lines = [line for line in _tail(path, 50).splitlines() if line.strip()]
    for line in reversed(lines):
        if "FATAL:" in line or "PANIC:" in line:
            return line.strip()
    return lines[-1].strip() if lines else "no reason in its log"


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no server log at {path})"
