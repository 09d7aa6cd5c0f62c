"""`linkwatch users`: portal accounts made, changed and disabled from the command line, as
an administrator would, then used to sign in to a portal on the same database."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from kernel.config import load_config
from linkwatch.daemon import open_database
from tests.helpers import FAST_HASHER, linkwatch
from tests.portal_kit import running_portal


def _config(base: Path) -> Path:
    directory = Path(tempfile.mkdtemp(dir=base))
    directory.chmod(0o711)  # the embedded server may run as another user
    path = directory / "linkwatch.yaml"
    path.write_text(
        f"""\
data_dir: {directory}
customers:
  - {{id: acme, name: ACME Corp, timezone: Europe/Berlin}}
links:
  - {{id: acme-hq, customer: acme, probes: [{{id: icmp, kind: icmp, host: 127.0.0.1}}]}}
users:
  - {{name: olga, role: ops, password_hash: "{FAST_HASHER.hash("olga-password")}"}}
"""
    )
    return path


async def _can_sign_in(config_path: Path, name: str, password: str) -> int:
    config = load_config(config_path)
    async with await open_database(config) as db, running_portal(db, config, history=None) as kit:
        return (await kit.login(name, password)).status


def test_an_added_user_signs_in_and_a_disabled_one_cannot(pg_base_dir: Path) -> None:
    path = _config(pg_base_dir)
    c = ["--config", str(path)]
    added = linkwatch(
        "users", "add", "carol", *c, "--role", "customer", "--customer", "acme",
        "--password-stdin", stdin="carol-password-1\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "portal user carol added (customer acme)" in added.stderr
    listing = linkwatch("users", "list", *c)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["user", "role", "customer", "state", "defined", "in"]
    assert any(line.split()[:4] == ["carol", "customer", "acme", "enabled"] for line in lines)
    assert any("olga" in line and "config file" in line for line in lines)
    assert asyncio.run(_can_sign_in(path, "carol", "carol-password-1")) == 303

    changed = linkwatch(
        "users", "passwd", "carol", *c, "--password-stdin", stdin="new-pass-12345\n"
    )
    assert changed.returncode == 0, changed.stderr
    assert asyncio.run(_can_sign_in(path, "carol", "carol-password-1")) == 401
    assert asyncio.run(_can_sign_in(path, "carol", "new-pass-12345")) == 303

    disabled = linkwatch("users", "disable", "carol", *c)
    assert disabled.returncode == 0, disabled.stderr
    assert asyncio.run(_can_sign_in(path, "carol", "new-pass-12345")) == 401
    assert linkwatch("users", "enable", "carol", *c).returncode == 0
    assert asyncio.run(_can_sign_in(path, "carol", "new-pass-12345")) == 303


def test_user_commands_refuse_what_they_cannot_do(pg_base_dir: Path) -> None:
    path = _config(pg_base_dir)
    c = ["--config", str(path)]

    def refused(args: list[str], message: str, stdin: str | None = None) -> None:
        result = linkwatch("users", *args, *c, stdin=stdin)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr

    pw = "a-good-password\n"
    refused(["add", "bob", "--role", "customer", "--password-stdin"],
            "role customer needs --customer", pw)  # fmt: skip
    refused(["add", "bob", "--role", "ops", "--customer", "acme", "--password-stdin"],
            "role ops sees every customer; leave out --customer", pw)  # fmt: skip
    refused(["add", "bob", "--role", "customer", "--customer", "initech", "--password-stdin"],
            "--customer 'initech' is not a customer; defined: acme", pw)  # fmt: skip
    refused(["add", "bob", "--role", "ops", "--password-stdin"],
            "a password needs at least 10 characters", "short\n")  # fmt: skip
    refused(["add", "olga", "--role", "ops", "--password-stdin"],
            "'olga' is a user of the config file; choose another name", pw)  # fmt: skip
    refused(["passwd", "olga", "--password-stdin"],
            "'olga' is defined in the config file; change or disable it there", pw)  # fmt: skip
    refused(["disable", "nobody"], "there is no portal user 'nobody'")
    assert linkwatch("users", "add", "bob", "--role", "ops", *c, "--password-stdin",
                     stdin=pw).returncode == 0  # fmt: skip
    refused(["add", "bob", "--role", "ops", "--password-stdin"],
            "there is already a portal user 'bob'", pw)  # fmt: skip
