"""docker-compose.yml and the Dockerfile agree with what the code expects.

No Docker engine runs here, so these read the files as Docker would and check every
value that must match the code: images, commands, ports, environment and the config.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from collector.migrate import MIN_TIMESCALEDB
from linkwatch.cli import _parser
from linkwatch.config import load_config
from tests.helpers import REPO

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


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


def test_commands_are_valid_linkwatch_invocations_of_a_valid_config() -> None:
    parser = _parser()
    roles = {}
    for name in ("collector", "portal"):
        args = parser.parse_args(SERVICES[name]["command"])
        roles[name] = args.role
        in_image = Path(args.config)
        assert in_image.parts[:3] == ("/", "opt", "linkwatch"), "config path inside the image"
        local = REPO / in_image.relative_to("/opt/linkwatch")
        config = load_config(local, environ=service_env(name))
        assert config.database.url == service_env(name)["LINKWATCH_DATABASE_URL"]
        assert config.database.timescaledb == "require"
        if name == "portal":
            published = SERVICES["portal"]["ports"][0].split(":")
            assert int(published[-1]) == config.portal.port
            assert config.portal.host == "0.0.0.0"  # reachable through the published port
    assert roles == {"collector": "collector", "portal": "portal"}


def test_only_the_probe_service_gets_raw_sockets() -> None:
    assert SERVICES["collector"]["cap_add"] == ["NET_RAW"]
    assert "cap_add" not in SERVICES["portal"]
    assert SERVICES["collector"]["sysctls"]["net.ipv4.ping_group_range"] == "0 2147483647"


def test_portal_healthcheck_uses_the_health_endpoint() -> None:
    check = " ".join(SERVICES["portal"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8080/healthz" in check


def test_dockerfile_installs_every_package_and_runs_unprivileged() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in ("linkwatch", "probes", "collector", "sla", "portal", "config"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert "USER linkwatch" in dockerfile
    assert 'ENTRYPOINT ["linkwatch"]' in dockerfile
