"""The command line as a user meets it: exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher
from psycopg.conninfo import make_conninfo

from collector.embedded import EmbeddedPostgres
from collector.migrate import migrations
from tests.helpers import FAST_HASHER, REPO, linkwatch

FIVE_MISTAKES = """\
customers:
  - {id: acme, name: ACME Corp, timezone: Europe/Berln}
links:
  - id: acme-hq
    customer: acme
    probes:
      - {id: icmp, kind: icmp, host: 127.0.0.1, interval: 30 seconds}
      - {id: port, kind: tcp, host: 127.0.0.1, port: 179, interval: 5s, timeout: 5s}
  - id: acme-hq
    customer: acme
    probes:
      - {id: icmp, kind: icmp, host: 127.0.0.2}
contracts:
  - {id: gold, customer: acme, links: [acme-dc], target: 99.5}
"""


def test_check_config_accepts_the_shipped_example() -> None:
    result = linkwatch("check-config", str(REPO / "config" / "demo.yaml"))
    assert result.returncode == 0, result.stderr
    assert "OK (3 customers, 5 links, 5 probes, 5 contracts, 6 users)" in result.stdout


def test_check_config_lists_five_different_mistakes(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(FIVE_MISTAKES)
    result = linkwatch("check-config", str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"{config}: 5 problems"
    assert lines[1:] == [
        f"  {config}:2: customers[0].timezone: 'Europe/Berln' is not a known time zone; use an"
        " IANA name such as Europe/Berlin or UTC",
        f"  {config}:7: links[0].probes[0].interval: '30 seconds' is not a duration; use a number"
        " with a unit ms, s, m, h, d or w, e.g. 200ms, 30s, 5m, 72h or 1h30m",
        f"  {config}:8: links[0].probes[1]: a run takes up to 5s (timeout), which must be shorter"
        " than interval 5s; lower the timeout or raise the interval",
        f"  {config}:9: links[1].id: duplicate id 'acme-hq'; already used by links[0]",
        f"  {config}:14: contracts[0].links[0]: unknown link 'acme-dc'; defined links: acme-hq",
    ]
    assert "Traceback" not in result.stderr


def test_every_shipped_config_validates_on_a_fresh_machine() -> None:
    """Nothing set in the environment: no SNMP_COMMUNITY, no secrets, no database URL."""
    files = sorted((REPO / "config").glob("*.yaml"))
    assert [f.name for f in files] == ["demo.yaml", "docker.yaml", "example.yaml"]
    for file in files:
        result = linkwatch("check-config", str(file), env={})
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"{file}: OK ("), result.stdout


def test_check_config_counts_in_the_right_number(tmp_path: Path) -> None:
    config = tmp_path / "one.yaml"
    config.write_text(
        "customers: [{id: acme, name: ACME}]\n"
        "links: [{id: hq, customer: acme, probes: [{id: icmp, kind: icmp, host: 127.0.0.1}]}]\n"
        "contracts: [{id: gold, customer: acme, links: [hq], target: 99.5}]\n"
    )
    result = linkwatch("check-config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{config}: OK (1 customer, 1 link, 1 probe, 1 contract, 0 users)\n"


HIDDEN_MISTAKES = """\
customers: [{id: acme, name: ACME}]
links:
  - id: hq
    customer: acme
    probes: [{id: icmp, kind: icmp, host: "", interval: 1s}]
contracts:
  - {id: gold, customer: acme, links: [hq], target: 99.5, fee: "10.005", currency: EUR}
maintenance:
  - id: mw-1
    start: 2026-11-24T22:00:00+01:00
    end: 2026-11-24T20:00:00+01:00
    announced_at: 2026-11-20T10:00:00
"""


def test_check_config_lists_mistakes_that_other_mistakes_used_to_hide(tmp_path: Path) -> None:
    """A missing offset beside an end before its start, an empty host beside a timeout
    that does not fit, and a contract's fee beside a mistake elsewhere: all at once."""
    config = tmp_path / "hidden.yaml"
    config.write_text(HIDDEN_MISTAKES)
    result = linkwatch("check-config", str(config))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{config}: 5 problems",
        f"  {config}:5: links[0].probes[0].host: '': string should have at least 1 character",
        f"  {config}:5: links[0].probes[0]: a run takes up to 2.8s (timeout plus 4 x spacing"
        " 200ms), which must be shorter than interval 1s; lower the timeout or raise the"
        " interval",
        f"  {config}:7: contracts[0].fee: fee 10.005 has more decimals than EUR allows (2)",
        f"  {config}:9: maintenance[0]: end 2026-11-24T20:00:00+01:00 is not after start"
        " 2026-11-24T22:00:00+01:00",
        f"  {config}:12: maintenance[0].announced_at: 2026-11-20T10:00:00 has no UTC offset;"
        " write it with one, e.g. 2026-11-20T10:00:00+01:00 or 2026-11-20T10:00:00Z",
    ]


def test_check_config_on_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = linkwatch("check-config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "cannot read the file: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_migrate_applies_once_then_nothing(pg_data_dir: Path) -> None:
    config = pg_data_dir / "linkwatch.yaml"
    config.write_text(f"data_dir: {pg_data_dir}\n")
    names = [m.name for m in migrations()]
    first = linkwatch("db", "migrate", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"applied {len(names)} migrations: {', '.join(names)}"
    assert names[:2] == ["001_samples", "002_maintenance_windows"]
    second = linkwatch("db", "migrate", "--config", str(config))
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "applied 0 migrations"
    # The embedded server was stopped again by each command.
    assert not (pg_data_dir / "postgres" / "data" / "postmaster.pid").exists()


def test_db_migrate_against_an_unreachable_database_says_so(tmp_path: Path) -> None:
    config = tmp_path / "linkwatch.yaml"
    config.write_text(
        "database: {url: 'postgresql://linkwatch@/linkwatch?host=/nonexistent&connect_timeout=2'}\n"
    )
    result = linkwatch("db", "migrate", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.startswith("linkwatch: ")
    assert "/nonexistent" in result.stderr
    assert "Traceback" not in result.stderr


def test_users_hash_prints_a_verifiable_argon2id_hash() -> None:
    result = linkwatch("users", "hash", "--stdin", stdin="correct horse battery\n")
    assert result.returncode == 0, result.stderr
    hashed = result.stdout.strip()
    assert hashed.startswith("$argon2id$")
    assert PasswordHasher().verify(hashed, "correct horse battery")


def test_demo_rejects_a_bad_listen_address() -> None:
    result = linkwatch("demo", "--listen", "127.0.0.1:70000")
    assert result.returncode == 2
    assert "--listen: port '70000' in '127.0.0.1:70000' is not a number from 1 to 65535" in (
        result.stderr
    )


def test_run_with_the_portal_port_taken_says_so_and_cleans_up(pg_data_dir: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = pg_data_dir / "linkwatch.yaml"
        config.write_text(f'data_dir: {pg_data_dir}\nportal: {{listen: "127.0.0.1:{port}"}}\n')
        result = linkwatch("run", "--config", str(config))
    assert result.returncode == 1
    assert f"linkwatch: the portal cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (pg_data_dir / "postgres" / "data" / "postmaster.pid").exists()


def test_probe_once_prints_every_probe_of_the_demo_config() -> None:
    import json

    result = linkwatch(
        "probe", "--once", "--config", str(REPO / "config" / "demo.yaml"), "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    outcomes = {(r["link"], r["probe"]): r for r in json.loads(result.stdout)}
    assert len(outcomes) == 5
    assert outcomes[("globex-backup", "tcp")]["outcome"] == "down"
    assert outcomes[("globex-backup", "tcp")]["error"] == "connection refused"
    assert outcomes[("acme-hq", "icmp")]["outcome"] == "up"
    assert outcomes[("acme-hq", "icmp")]["loss_pct"] == 0.0
    bad = linkwatch(
        "probe", "--once", "--config", str(REPO / "config" / "demo.yaml"), "--link", "nope"
    )
    assert bad.returncode == 2
    assert "--link nope: not in the config" in bad.stderr


READ_ONLY = [
    ("report", "sla", "--window", "2026-W47"),
    ("report", "monthly", "--customer", "acme", "--month", "2026-11"),
    ("credits", "list"),
    ("credits", "export"),
    ("credits", "refresh"),
    ("db", "stats"),
    ("db", "housekeeping"),
    ("db", "rebuild-states", "--from", "2026-11-01T00:00:00Z", "--to", "2026-11-02T00:00:00Z"),
]
ONE_CONTRACT = (
    "customers: [{id: acme, name: ACME}]\n"
    "links: [{id: hq, customer: acme, probes: [{id: icmp, kind: icmp, host: 127.0.0.1}]}]\n"
    "contracts: [{id: gold, customer: acme, links: [hq], target: 99.5, window: week}]\n"
    f'users: [{{name: noc, role: ops, password_hash: "{FAST_HASHER.hash("noc-password")}"}}]\n'
)


def test_commands_that_read_say_when_nothing_is_stored_and_create_nothing(
    tmp_path: Path,
) -> None:
    """A mistyped data_dir: no empty database appears, and no report of n/a exits 0."""
    data = tmp_path / "nothing-here"
    config = tmp_path / "linkwatch.yaml"
    config.write_text(f"data_dir: {data}\n" + ONE_CONTRACT)
    for command in READ_ONLY:
        result = linkwatch(*command[:2], "--config", str(config), *command[2:])
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert result.stdout == "", command
        assert result.stderr == (
            f"linkwatch: there is no database in {data}/postgres: nothing has been stored"
            " there; check data_dir in the config; `linkwatch run` and `linkwatch import"
            " samples` store data there\n"
        ), command
    users = linkwatch("users", "list", "--config", str(config))
    assert users.returncode == 0, users.stderr
    assert users.stdout.splitlines()[1].split() == ["noc", "ops", "enabled", "config", "file"]
    assert "no database yet, so only the config file's users exist" in users.stderr
    assert not data.exists()


def test_reports_on_a_database_without_samples_say_so(pg_data_dir: Path) -> None:
    config = pg_data_dir / "linkwatch.yaml"
    config.write_text(f"data_dir: {pg_data_dir}\n" + ONE_CONTRACT)
    assert linkwatch("db", "migrate", "--config", str(config)).returncode == 0
    for command in READ_ONLY[:2]:
        result = linkwatch(*command[:2], "--config", str(config), *command[2:])
        assert result.returncode == 1, (command, result.stdout)
        assert result.stdout == ""
        assert "linkwatch: no samples are stored in database postgresql://" in result.stderr
        assert "so there is nothing to report; check data_dir in the config" in result.stderr
    listed = linkwatch("credits", "list", "--config", str(config))
    assert listed.returncode == 0, listed.stderr  # an empty ledger is an answer


def test_commands_that_read_leave_an_empty_database_without_tables(
    embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    """database.url pointing at a database Linkwatch never set up (a wrong name, say)."""
    with psycopg.connect(
        make_conninfo(embedded_postgres.url, dbname="postgres"), autocommit=True
    ) as admin:
        admin.execute("DROP DATABASE IF EXISTS not_linkwatch")
        admin.execute("CREATE DATABASE not_linkwatch")
    url = make_conninfo(embedded_postgres.url, dbname="not_linkwatch")
    config = tmp_path / "linkwatch.yaml"
    config.write_text(f"database: {{url: '{url}'}}\n" + ONE_CONTRACT)
    for command in READ_ONLY:
        result = linkwatch(*command[:2], "--config", str(config), *command[2:])
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "/not_linkwatch?host=" in result.stderr
        assert "holds no Linkwatch tables: nothing has been stored there; check database.url" in (
            result.stderr
        )
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone() == (0,)


def _into_a_closed_pipe(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`linkwatch ARGS | head -1` where head has exited already: every write to standard
    output fails (deterministically, unlike a race with a real head)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "linkwatch", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            input=stdin,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


def test_every_command_ends_quietly_when_its_reader_goes_away(pg_data_dir: Path) -> None:
    config = pg_data_dir / "linkwatch.yaml"
    config.write_text(
        f"data_dir: {pg_data_dir}\n"
        "customers: [{id: acme, name: ACME}]\n"
        "links: [{id: hq, customer: acme, probes: [{id: icmp, kind: icmp, host: 127.0.0.1}]}]\n"
        "contracts: [{id: gold, customer: acme, links: [hq], target: 99.5, window: week}]\n"
    )
    samples = pg_data_dir / "samples.csv"
    samples.write_text(
        "time,link,probe,outcome,rtt_ms,loss_pct\n"
        + "".join(f"2026-11-24T09:{m:02d}:00Z,hq,icmp,up,1.5,0\n" for m in range(10))
    )
    loaded = linkwatch("import", "samples", "--config", str(config), str(samples))
    assert loaded.returncode == 0, loaded.stderr
    for own_output in (("--version",), ("--help",)):  # argparse's: it stops quietly itself
        result = _into_a_closed_pipe(*own_output)
        assert (result.returncode, result.stderr) == (0, ""), own_output
    c = str(config)
    commands: list[tuple[str, ...]] = [
        ("check-config", c),
        ("probe", "--once", "--config", c),
        ("report", "sla", "--config", c, "--window", "2026-W48"),
        ("report", "monthly", "--config", c, "--customer", "acme", "--month", "2026-11"),
        ("credits", "list", "--config", c),
        ("credits", "export", "--config", c, "--status", "applied"),
        ("db", "stats", "--config", c),
        ("db", "migrate", "--config", c),
        ("import", "samples", "--config", c, str(samples)),
        ("users", "list", "--config", c),
    ]
    for command in commands:
        result = _into_a_closed_pipe(*command)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        assert "BrokenPipe" not in result.stderr, (command, result.stderr)
        assert result.returncode == 141, (command, result.returncode, result.stderr)
    hashed = _into_a_closed_pipe("users", "hash", "--stdin", stdin="correct horse battery\n")
    assert (hashed.returncode, hashed.stderr) == (141, "")


SMALL = b"""\
customers: [{id: acme, name: ACME}]
links:
  - id: hq
    customer: acme
    probes: [{id: icmp, kind: icmp, host: 127.0.0.1, interval: 30s}]
contracts: [{id: gold, customer: acme, links: [hq], target: 99.5, fee: "100.00"}]
"""
LAUGHS = (
    b"a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    + "".join(
        f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]\n"
        for name, previous in zip("bcdefghi", "abcdefgh", strict=True)
    ).encode()
)
# The files issue 15 lists, each with the line and the words check-config must name it by.
HOSTILE = [
    ("latin-1", SMALL.replace(b"ACME", b"M\xfcller"), 1, "byte 0xfc in column 31 is not UTF-8"),
    ("overflow", SMALL.replace(b"30s", b"99999999999999999999w"), 5, "links[0].probes[0].interval"),
    ("garbage", bytes(range(256)) * 8, 1, "the file contains NUL bytes, so it is not text"),
    ("garbage-no-nul", bytes(range(128, 256)) * 8, 1, "byte 0x80 in column 1 is not UTF-8"),
    ("utf-16", SMALL.decode().encode("utf-16"), 1, "the file is UTF-16 text"),
    ("5000-digits", SMALL + b"collector: {queue_size: " + b"9" * 5000 + b"}\n", 7, "too long"),
    ("fee", SMALL.replace(b'"100.00"', b'"1e999999999"'), 6, "more than any amount billed"),
    ("billion-laughs", LAUGHS, 7, "holds more than 5,000,000 values once its aliases are expanded"),
    ("duplicate-key", SMALL + b"customers: []\n", 7, "given twice, on lines 1 and 7"),
    ("empty", b"", 1, "the file is empty"),
    ("null", b"null\n", 1, "the file is empty"),
    ("comments", b"# links: []\n", 1, "the file is empty"),
    (
        "env-backtracking",
        SMALL.replace(b"ACME}", b'ACME, timezone: "' + b"${A:-" * 100_000 + b'"}'),
        1,
        "customers[0].timezone: '${A:-${A:-",
    ),
]


@pytest.mark.parametrize(
    ("raw", "line", "words"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_check_config_names_each_hostile_file_with_exit_2(
    raw: bytes, line: int, words: str, tmp_path: Path
) -> None:
    config = tmp_path / "hostile.yaml"
    config.write_bytes(raw)
    result = linkwatch("check-config", str(config), timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[0].startswith(f"{config}: ")
    named = [
        entry for entry in result.stderr.splitlines() if entry.startswith(f"  {config}:{line}: ")
    ]
    assert named, result.stderr
    assert words in named[0], result.stderr
    assert len(result.stderr) < 2000, "a huge value is shortened, not printed"


def test_a_100_percent_target_is_missed_by_two_minutes_down(pg_data_dir: Path) -> None:
    """`target: 100` is a contract with no down time allowed: the budget is 0, two
    minutes down in a week miss it and earn the credit, and the report says so."""
    from datetime import UTC, datetime, timedelta

    config = pg_data_dir / "linkwatch.yaml"
    config.write_text(
        f"data_dir: {pg_data_dir}\n"
        + SMALL.decode()
        .replace("interval: 30s", "interval: 1m")
        .replace("target: 99.5", "target: 100, window: week, credit: {per_step: 10}")
    )
    checked = linkwatch("check-config", str(config))
    assert checked.returncode == 0, checked.stderr
    start = datetime(2026, 11, 16, tzinfo=UTC)  # Monday of 2026-W47
    samples = pg_data_dir / "week.csv"
    rows = ["time,link,probe,outcome,rtt_ms,loss_pct"]
    for minute in range(7 * 24 * 60):
        down = minute in (3000, 3001)  # two in a row: confirmed, the outage lasts 2 min
        outcome, rtt, loss = ("down", "", "100") if down else ("up", "4.2", "0")
        rows.append(
            f"{(start + timedelta(minutes=minute)).isoformat()},hq,icmp,{outcome},{rtt},{loss}"
        )
    samples.write_text("\n".join(rows) + "\n")
    imported = linkwatch("import", "samples", "--config", str(config), str(samples))
    assert imported.returncode == 0, imported.stderr
    result = linkwatch(
        "report", "sla", "--config", str(config), "--window", "2026-W47", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert {
        k: record[k] for k in ("target_pct", "down_s", "met", "budget_s", "budget_used_pct")
    } == {
        "target_pct": "100",
        "down_s": 120,
        "met": False,
        "budget_s": 0,
        "budget_used_pct": None,
    }
    assert (record["credit_steps"], record["credit_pct"], record["credit_amount"]) == (
        1,
        "10",
        "10.00",
    )
