"""Config validation: one invalid fixture per rule, each with the exact message expected."""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.config import load_config, parse_config
from kernel.configfile import LIMITS, Limits
from kernel.domain import EventKind
from kernel.durations import format_duration, parse_duration
from kernel.errors import ConfigError

HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$USNLIyNyoXXJYOcyUxAOwQ$"
    "cNzdFdpP2fSuq4XxPBeRfxhCgyjwuH7mfMGcV88iNcY"
)
REPO = Path(__file__).resolve().parent.parent

BASE: dict[str, Any] = {
    "customers": [{"id": "acme", "name": "ACME Corp", "timezone": "Europe/Berlin"}],
    "links": [
        {
            "id": "acme-hq",
            "customer": "acme",
            "probes": [{"id": "icmp", "kind": "icmp", "host": "127.0.0.1", "interval": "30s"}],
        }
    ],
    "contracts": [
        {"id": "gold", "customer": "acme", "links": ["acme-hq"], "target": 99.5, "window": "week"}
    ],
    "maintenance": [
        {
            "id": "mw-1",
            "links": ["acme-hq"],
            "start": "2026-11-24T02:00:00+01:00",
            "end": "2026-11-24T04:00:00+01:00",
            "announced_at": "2026-11-17T10:00:00+01:00",
        }
    ],
    "users": [{"name": "alice", "role": "customer", "customer": "acme", "password_hash": HASH}],
}


def problems(data: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(data), environ=environ or {})
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def edit(path: str, value: Any) -> dict[str, Any]:
    """BASE with the value at a dotted path (ints index lists) replaced or added."""
    data = copy.deepcopy(BASE)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = data
    for part in parents:
        node = node[part]
    node[last] = value
    return data


def test_base_is_valid() -> None:
    config = parse_config(yaml.safe_dump(BASE), environ={})
    probe = config.links[0].probes[0]
    assert probe.interval == timedelta(seconds=30)
    assert probe.stale_after_effective == timedelta(seconds=90)
    assert config.customer("acme").tz.key == "Europe/Berlin"
    assert config.database.url is None  # embedded database by default
    assert config.database.retention == timedelta(days=395)


CASES = [
    pytest.param(
        edit("links.0.colour", "red"),
        "links[0].colour: unknown key 'colour'; allowed keys here: id, customer, description,"
        " probes, thresholds, vantage, upstream",
        id="unknown-key",
    ),
    pytest.param(
        edit("links.0.probes.0.interval", "30x"),
        "links[0].probes[0].interval: '30x' is not a duration; use a number with a unit ms, s,"
        " m, h, d or w, e.g. 200ms, 30s, 5m, 72h or 1h30m",
        id="bad-duration",
    ),
    pytest.param(
        edit("links.0.probes.0.interval", 30),
        "links[0].probes[0].interval: 30 has no unit; write it as e.g. 30s",
        id="duration-without-unit",
    ),
    pytest.param(
        edit("links.0.probes.0.count", "five"),
        "links[0].probes[0].count: 'five': input should be a valid integer, unable to parse"
        " string as an integer",
        id="wrong-type",
    ),
    pytest.param(
        edit("links.0.customer", "acmee"),
        "links[0].customer: unknown customer 'acmee'; defined customers: acme",
        id="unknown-customer",
    ),
    pytest.param(
        edit("contracts.0.links", ["acme-hq", "acme-dc"]),
        "contracts[0].links[1]: unknown link 'acme-dc'; defined links: acme-hq",
        id="unknown-link",
    ),
    pytest.param(
        edit("customers", [*BASE["customers"], {"id": "acme", "name": "Again"}]),
        "customers[1].id: duplicate id 'acme'; already used by customers[0]",
        id="duplicate-id",
    ),
    pytest.param(
        edit(
            "links.0.probes",
            [BASE["links"][0]["probes"][0], BASE["links"][0]["probes"][0]],
        ),
        "links[0].probes[1].id: duplicate probe id 'icmp' within link 'acme-hq'",
        id="duplicate-probe-id",
    ),
    pytest.param(
        edit(
            "links.0.probes.0",
            {
                "id": "t",
                "kind": "tcp",
                "host": "127.0.0.1",
                "port": 80,
                "interval": "2s",
                "timeout": "3s",
            },
        ),
        "links[0].probes[0]: a run takes up to 3s (timeout), which must be shorter than"
        " interval 2s; lower the timeout or raise the interval",
        id="timeout-not-below-interval",
    ),
    pytest.param(
        edit("links.0.probes.0.interval", "1s"),
        "links[0].probes[0]: a run takes up to 2.8s (timeout plus 4 x spacing 200ms),"
        " which must be shorter than interval 1s; lower the timeout or raise the interval",
        id="icmp-burst-longer-than-interval",
    ),
    pytest.param(
        edit("customers.0.timezone", "Europe/Berlinn"),
        "customers[0].timezone: 'Europe/Berlinn' is not a known time zone; use an IANA name"
        " such as Europe/Berlin or UTC",
        id="bad-timezone",
    ),
    pytest.param(
        edit("links.0.probes.0.kind", "ftp"),
        "links[0].probes[0].kind: unknown probe kind 'ftp'; allowed: icmp, snmp, http, tcp",
        id="unknown-probe-kind",
    ),
    pytest.param(
        edit("contracts.0.window", "fortnight"),
        "contracts[0].window: 'fortnight' is not allowed; use one of 'week', 'month', "
        "'quarter' or 'year'",
        id="bad-choice",
    ),
    pytest.param(
        edit("contracts.0.target", 120),
        "contracts[0].target: 120: input should be less than or equal to 100",
        id="target-out-of-range",
    ),
    pytest.param(
        edit("contracts.0.availability_decimals", 5),
        "contracts[0].availability_decimals: 5 is not allowed; use a whole number from 0 to 4"
        " (availability is kept to 4 decimals)",
        id="availability-decimals-out-of-range",
    ),
    pytest.param(
        edit("contracts.0.availability_decimals", "2"),
        "contracts[0].availability_decimals: '2' is not a number of decimals; use a whole"
        " number from 0 to 4",
        id="availability-decimals-not-a-number",
    ),
    pytest.param(
        edit("maintenance.0.end", "2026-11-24T01:00:00+01:00"),
        "maintenance[0]: end 2026-11-24T01:00:00+01:00 is not after start"
        " 2026-11-24T02:00:00+01:00",
        id="maintenance-ends-before-start",
    ),
    pytest.param(
        edit("maintenance.0.start", "2026-11-24T02:00:00"),
        "maintenance[0].start: 2026-11-24T02:00:00 has no UTC offset; write it with one, e.g."
        " 2026-11-24T02:00:00+01:00 or 2026-11-24T02:00:00Z",
        id="naive-time",
    ),
    pytest.param(
        edit("users.0.customer", None),
        "users[0]: role customer needs the customer this user belongs to",
        id="customer-user-without-customer",
    ),
    pytest.param(
        edit("users.0.password_hash", "hunter2"),
        "users[0].password_hash: 'hunter2' is not an argon2id hash; create one with"
        " `linkwatch users hash`",
        id="password-not-hashed",
    ),
    pytest.param(
        edit("contracts.0.currency", "eur"),
        "contracts[0].currency: 'eur' is not a currency code; use three capital letters, e.g. EUR",
        id="bad-currency",
    ),
    pytest.param(
        edit("probing", {"concurrency_per_kind": {"icmp": 0}}),
        "probing.concurrency_per_kind.icmp: 0: input should be greater than or equal to 1",
        id="no-icmp-slots",
    ),
    pytest.param(
        edit("probing", {"concurrency_per_kind": {"ftp": 8}}),
        "probing.concurrency_per_kind.ftp: unknown key 'ftp'; allowed keys here: icmp, snmp,"
        " http, tcp",
        id="unknown-probe-kind-limit",
    ),
    pytest.param(
        edit("portal", {"listen": "127.0.0.1:99999"}),
        "portal.listen: port '99999' in '127.0.0.1:99999' is not a number from 1 to 65535",
        id="bad-port",
    ),
    pytest.param(
        edit("links.0.probes.0", {"id": "s", "kind": "snmp", "host": "127.0.0.1"}),
        "links[0].probes[0]: version 2c needs a community, e.g. community: ${SNMP_COMMUNITY}",
        id="snmp-without-community",
    ),
    pytest.param(
        edit(
            "links.0.probes.0",
            {
                "id": "s",
                "kind": "snmp",
                "host": "127.0.0.1",
                "community": "c",
                "interface": {"alias": "CID-1", "index": 3},
            },
        ),
        "links[0].probes[0].interface: name the interface by exactly one of index, name,"
        " descr or alias (got index, alias)",
        id="snmp-interface-two-names",
    ),
    pytest.param(
        edit("links.0.probes.0", {"id": "icmp", "host": "127.0.0.1"}),
        "links[0].probes[0].kind: probe has no kind; allowed: icmp, snmp, http, tcp",
        id="probe-without-kind",
    ),
    pytest.param(
        {k: v for k, v in edit("links.0.description", "x").items() if k != "customers"},
        "links[0].customer: unknown customer 'acme'; defined customers: none defined",
        id="no-customers-at-all",
    ),
]


CONTRACT = BASE["contracts"][0]
CASES += [
    pytest.param(
        edit("contracts.0", {k: v for k, v in CONTRACT.items() if k != "target"}),
        "contracts[0]: no target; set target (percent) or name a plan that has one",
        id="contract-without-target",
    ),
    pytest.param(
        edit("contracts.0.plan", "platinum"),
        "contracts[0].plan: unknown plan 'platinum'; defined plans: none defined",
        id="unknown-plan",
    ),
    pytest.param(
        edit("contracts.0.fee", "10.005"),
        "contracts[0].fee: fee 10.005 has more decimals than EUR allows (2)",
        id="fee-finer-than-currency",
    ),
    pytest.param(
        edit(
            "contracts.0.versions",
            [
                {"effective_from": "2026-12-01T00:00:00+01:00"},
                {"effective_from": "2026-12-01T00:00:00+01:00"},
            ],
        ),
        "contracts[0].versions: two versions take effect at the same time",
        id="duplicate-version-dates",
    ),
    pytest.param(
        edit("contracts.0.latency", {"credit": 5}),
        "contracts[0].latency: give p95_ms, mean_ms or both",
        id="latency-objective-without-limit",
    ),
]


HOOK = {"id": "hook", "kind": "webhook", "url": "http://127.0.0.1:9000/x", "secret": "s" * 16}
MAIL = {"id": "mail", "kind": "email", "sender": "lw@isp.example", "to": ["noc@isp.example"]}


def notifying(
    *routes: dict[str, Any], channels: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return edit("notifications", {"channels": channels or [HOOK, MAIL], "routes": list(routes)})


CASES += [
    pytest.param(
        notifying(channels=[{**HOOK, "kind": "pager"}]),
        "notifications.channels[0].kind: unknown channel kind 'pager'; allowed: webhook, email",
        id="unknown-channel-kind",
    ),
    pytest.param(
        notifying(channels=[{**HOOK, "secret": "short"}]),
        "notifications.channels[0].secret: 'short': string should have at least 16 characters",
        id="webhook-secret-too-short",
    ),
    pytest.param(
        notifying(channels=[{**MAIL, "to": ["noc"]}]),
        "notifications.channels[0].to[0]: 'noc' is not an e-mail address; write it as "
        "name@example.net",
        id="bad-email-address",
    ),
    pytest.param(
        notifying(channels=[{**MAIL, "smtp": {"username": "lw"}}]),
        "notifications.channels[0].smtp: set both username and password, or neither",
        id="smtp-user-without-password",
    ),
    pytest.param(
        notifying({"id": "r", "channel": "pager"}),
        "notifications.routes[0].channel: unknown channel 'pager'; defined channels: hook, mail",
        id="route-to-unknown-channel",
    ),
    pytest.param(
        notifying({"id": "r", "channel": "hook", "to": ["a@b.example"]}),
        "notifications.routes[0].to: channel 'hook' is not e-mail; remove to",
        id="recipients-for-a-webhook",
    ),
    pytest.param(
        notifying({"id": "r", "channel": "hook", "customer": "globex"}),
        "notifications.routes[0].customer: unknown customer 'globex'; defined customers: acme",
        id="route-for-unknown-customer",
    ),
    pytest.param(
        notifying({"id": "r", "channel": "hook", "customer": "acme", "events": ["monitor-blind"]}),
        "notifications.routes[0].events[0]: monitor-blind is about the monitor, for operations "
        "only; remove it or remove customer",
        id="monitor-events-to-a-customer",
    ),
    pytest.param(
        notifying({"id": "r", "channel": "hook"}, {"id": "r", "channel": "mail"}),
        "notifications.routes[1].id: duplicate id 'r'; already used by notifications.routes[0]",
        id="duplicate-route-id",
    ),
    pytest.param(
        edit("notifications", {"hold_down": "-1m"}),
        "notifications.hold_down: '-1m' is not a duration; use a number with a unit ms, s, m, "
        "h, d or w, e.g. 200ms, 30s, 5m, 72h or 1h30m",
        id="negative-hold-down",
    ),
    pytest.param(
        edit("contracts.0.breach_notice", "Dear {{ customer"),
        "contracts[0].breach_notice: not a valid template: unexpected end of template, "
        "expected 'end of print statement'. (line 1); write jinja2, e.g. {{ availability }}",
        id="breach-notice-not-a-template",
    ),
]


def test_routes_choose_kinds_and_never_give_a_customer_the_monitors_own() -> None:
    config = parse_config(
        yaml.safe_dump(
            notifying(
                {"id": "ops", "channel": "hook"},
                {"id": "acme", "channel": "mail", "customer": "acme", "events": ["all"]},
                {"id": "m", "channel": "hook", "events": ["maintenance", "budget"]},
            )
        ),
        environ={},
    )
    ops, acme, some = config.notifications.routes
    assert EventKind.MONITOR_BLIND in ops.kinds()
    assert EventKind.MONITOR_BLIND not in acme.kinds()
    assert EventKind.LINK_DOWN in acme.kinds()
    assert some.kinds() == {
        EventKind.MAINTENANCE_ANNOUNCED,
        EventKind.MAINTENANCE_STARTED,
        EventKind.MAINTENANCE_FINISHED,
        EventKind.MAINTENANCE_CANCELLED,
        EventKind.BUDGET,
    }


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_each_rule_reports_its_exact_message(data: dict[str, Any], expected: str) -> None:
    found = problems(data)
    assert expected in found, "\n".join(found)


def test_unset_environment_variable_is_named_once() -> None:
    data = edit(
        "links.0.probes.0",
        {"id": "s", "kind": "snmp", "host": "127.0.0.1:16161", "community": "${SNMP_COMMUNITY}"},
    )
    data["portal"] = {"secret_key": "${LINKWATCH_SECRET_KEY}"}
    # Not also "'${LINKWATCH_SECRET_KEY}' should have at least 32 characters".
    assert problems(data) == [
        "links[0].probes[0].community: environment variable SNMP_COMMUNITY is not set; set it,"
        " or give a default as ${SNMP_COMMUNITY:-value}",
        "portal.secret_key: environment variable LINKWATCH_SECRET_KEY is not set; set it,"
        " or give a default as ${LINKWATCH_SECRET_KEY:-value}",
    ]


def test_environment_variables_are_expanded_with_defaults_and_escapes() -> None:
    data = edit(
        "links.0.probes.0",
        {"id": "s", "kind": "snmp", "host": "127.0.0.1:16161", "community": "${COMM}$$x"},
    )
    data["database"] = {"url": "${DB_URL:-}"}
    config = parse_config(yaml.safe_dump(data), environ={"COMM": "s3cret"})
    probe = config.links[0].probes[0]
    assert probe.kind == "snmp"
    assert probe.community == "s3cret$x"
    assert probe.port == 16161
    assert config.database.url is None  # an empty default means "embedded"


def test_all_mistakes_are_reported_at_once_with_lines(tmp_path: Path) -> None:
    text = """\
customers:
  - {id: acme, name: ACME, timezone: Mars/Olympus}
links:
  - id: acme-hq
    customer: acme
    probes:
      - {id: icmp, kind: icmp, host: 127.0.0.1, interval: 10q}
contracts:
  - {id: c, customer: acme, links: [acme-dc], target: 99.5, window: week, colour: red}
"""
    path = tmp_path / "linkwatch.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path}: 4 problems"
    assert [line.split(": ")[0].strip() for line in lines[1:]] == [
        f"{path}:2",
        f"{path}:7",
        f"{path}:9",
        f"{path}:9",
    ]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("customers:\n  - {id: acme, name: ACME\nlinks: []\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems[0].message.startswith("not valid YAML")
    assert info.value.problems[0].line == 3


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file: No such file or directory"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("name", ["example.yaml", "demo.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    config = load_config(REPO / "config" / name, environ={"SNMP_COMMUNITY": "public"})
    assert config.links
    hosts = [getattr(p, "host", "") for link in config.links for p in link.probes]
    # Shipped configs only ever point at loopback.
    assert all(h.startswith("127.") for h in hosts if h), hosts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("200ms", timedelta(milliseconds=200)),
        ("30s", timedelta(seconds=30)),
        ("1h30m", timedelta(minutes=90)),
        ("72h", timedelta(days=3)),
        ("1.5s", timedelta(milliseconds=1500)),
        ("2w", timedelta(days=14)),
    ],
)
def test_durations_parse_and_round_trip(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "30", "s", "30 s", "-5s", "5m30", "1y"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_contract_terms_resolve_through_plan_contract_and_version() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    data = copy.deepcopy(BASE)
    data["plans"] = [
        {
            "id": "gold",
            "target": 99.9,
            "window": "week",
            "fee": "100.00",
            "credit": {"per_step": 10, "cap": 30, "bands": [{"below": 99, "credit": 25}]},
            "availability_decimals": 2,
        }
    ]
    data["contracts"] = [
        {
            "id": "c1",
            "customer": "acme",
            "links": ["acme-hq"],
            "plan": "gold",
            "effective_from": "2026-01-01T00:00:00+01:00",
            "credit": {"cap": 50},
            "versions": [
                {
                    "effective_from": "2026-12-01T00:00:00+01:00",
                    "target": 99.95,
                    "availability_decimals": 4,
                }
            ],
        }
    ]
    config = parse_config(yaml.safe_dump(data), environ={})
    # Decimals of the availability people read: the plan's, then the version's; the
    # default for a contract the config does not have (any more).
    assert config.availability_decimals("c1", datetime(2026, 11, 16, tzinfo=UTC)) == 2
    assert config.availability_decimals("c1", datetime(2026, 12, 7, tzinfo=UTC)) == 4
    assert config.availability_decimals("gone", datetime(2026, 12, 7, tzinfo=UTC)) == 3
    contract = parse_config(yaml.safe_dump(data), environ={}).contracts[0]
    plans = parse_config(yaml.safe_dump(data), environ={}).plans
    november = contract.terms_at(datetime(2026, 11, 16, tzinfo=UTC), plans)
    assert november is not None
    assert (november.target, november.window, november.fee) == (
        Decimal("99.9"),
        "week",
        Decimal("100.00"),
    )
    # The contract changes only the cap; the plan's step credit and bands stay.
    assert (november.credit.per_step, november.credit.cap) == (Decimal(10), Decimal(50))
    assert [b.credit for b in november.credit.bands] == [Decimal(25)]
    december = contract.terms_at(datetime(2026, 12, 7, tzinfo=UTC), plans)
    assert december is not None
    assert december.target == Decimal("99.95")
    assert december.credit.cap == Decimal(50)
    assert contract.terms_at(datetime(2025, 12, 1, tzinfo=UTC), plans) is None
    # Asked again (the terms are kept once resolved): each moment still gets its own,
    # and other plans (a reloaded config's) their own.
    again = contract.terms_at(datetime(2026, 11, 20, tzinfo=UTC), plans)
    assert again is not None
    assert again.target == Decimal("99.9")
    data["plans"][0]["target"] = 99.8
    reloaded = parse_config(yaml.safe_dump(data), environ={}).plans
    changed = contract.terms_at(datetime(2026, 11, 20, tzinfo=UTC), reloaded)
    assert changed is not None
    assert changed.target == Decimal("99.8")
    # What is kept is no part of the contract: one asked and one not compare as equal
    # (a reload compares configs; the maintenance desk finds contracts in lists).
    data["plans"][0]["target"] = 99.9  # as `config` was read
    fresh = parse_config(yaml.safe_dump(data), environ={})
    assert fresh.contracts[0] == contract
    assert contract in fresh.contracts
    assert fresh == config  # `config` has looked contracts up by id; `fresh` has not


# --- input that must not hurt --------------------------------------------------------------

EXAMPLE = (REPO / "config" / "example.yaml").read_bytes()
# Loader limits for the property tests: the loader itself gives up after `seconds`.
QUICK = Limits(seconds=5)


def loads_or_names_the_problem(load: Callable[[], object]) -> None:
    """`load` returns a config or raises a ConfigError that names its problems, within
    the loader's own time limit; any other exception propagates and fails the test."""
    started = time.monotonic()
    error: ConfigError | None = None
    try:
        load()
    except ConfigError as exc:
        error = exc
    assert time.monotonic() - started < 2 * QUICK.seconds
    if error is not None:
        assert error.problems, "a ConfigError names at least one problem"
        assert all(p.message for p in error.problems)


def load_bytes(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "linkwatch.yaml"
        path.write_bytes(raw)
        loads_or_names_the_problem(lambda: load_config(path, environ={}, limits=QUICK))


# Pieces of YAML and values that have broken loaders: anchors, aliases and merges, tags,
# huge and odd numbers, bad dates, stray bytes, document markers, environment references.
TOKENS = [
    *(b"&a ", b"*a", b"<<: *a", b"&b [*a, *a, *a]", b"{", b"}", b"[", b"]", b"- ", b": "),
    *(b"\n", b"  ", b"\t", b"? ", b"---\n", b"...\n", b"%YAML 1.1\n", b"#", b"|\n", b">-\n"),
    *(b"!!binary ", b"!!int ", b"!!float ", b"!!timestamp ", b"!!set ", b"!foo ", b"!"),
    *(b"99999999999999999999w", b"1e999999", b"1e-999999999", b'"1e999999999"', b"9" * 120),
    *(b"1:2:3", b"0x", b"0b2", b"0o9", b".inf", b"-.inf", b".nan", b"~", b"null", b"yes"),
    *(b"-1", b"0", b"100", b"100.0000001", b"1.5", b"true", b"on: ", b"2026-02-30"),
    *(b"2026-11-24T02:00:00+25:00", b"0001-01-01T00:00:00+14:00", b"9999-12-31T23:59:59-14:00"),
    *(b"${X}", b"${X:-", b"$$", b"'", b'"', b"\\", b"\x00", b"\xff", b"\xef\xbb\xbf", b"\r\n"),
]


@st.composite
def example_edits(draw: st.DrawFn) -> bytes:
    """config/example.yaml with a few bytes deleted, inserted, replaced or a line doubled:
    mostly valid YAML, so the edits reach validation and its rules."""
    data = bytearray(EXAMPLE)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["delete", "insert", "replace", "double-line"]))
        if edit == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif edit == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS) | st.binary(max_size=8))
        elif edit == "replace":
            data[at : at + draw(st.integers(1, 12))] = draw(st.sampled_from(TOKENS))
        else:
            lines = bytes(data).split(b"\n")
            line = draw(st.integers(0, len(lines) - 1))
            data = bytearray(b"\n".join([*lines[:line], lines[line], *lines[line:]]))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=4096))
def test_whatever_the_bytes_the_loader_returns_a_config_or_names_the_problem(raw: bytes) -> None:
    load_bytes(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(alphabet=st.sampled_from("{}[]&*!|>-:,?'\"#%@`\\ \n\tab0.9~$") | st.characters())
)
def test_whatever_the_text_the_parser_returns_a_config_or_names_the_problem(text: str) -> None:
    """Text rather than bytes: every character reaches the YAML reader, YAML's own
    punctuation most often."""
    loads_or_names_the_problem(lambda: parse_config(text, environ={}, limits=QUICK))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=example_edits())
def test_whatever_the_edits_to_the_example_the_loader_returns_a_config_or_names_the_problem(
    raw: bytes,
) -> None:
    load_bytes(raw)


def test_the_loader_gives_up_at_its_own_time_limit(tmp_path: Path) -> None:
    """A file that takes long to read is refused with a message, never waited out."""
    links = "".join(
        f"  - {{id: l{i}, customer: acme, probes: [{{id: icmp, kind: icmp, host: 127.0.0.1}}]}}\n"
        for i in range(5_000)
    )
    path = tmp_path / "big.yaml"
    path.write_text(f"customers: [{{id: acme, name: ACME}}]\nlinks:\n{links}")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={}, limits=Limits(seconds=0.01))
    assert "reading the file took longer than 0.01 s and was given up" in str(info.value)
    assert len(load_config(path, environ={}).links) == 5_000  # within the default limit


def config_problems(text: str | bytes, tmp_path: Path, limits: Limits = LIMITS) -> list[str]:
    """`path:line: where: message` of each problem, as check-config prints them."""
    path = tmp_path / "linkwatch.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={}, limits=limits)
    return [p.render("f") for p in info.value.problems]


VALID = """\
customers: [{id: acme, name: ACME}]
links:
  - id: hq
    customer: acme
    probes: [{id: icmp, kind: icmp, host: 127.0.0.1}]
contracts: [{id: gold, customer: acme, links: [hq], target: 99.5, fee: "100.00"}]
"""


def test_a_billion_laughs_is_refused_at_the_line_where_it_expands(tmp_path: Path) -> None:
    levels = [f"a: &a [{','.join(['lol'] * 9)}]"]
    for name, previous in zip("bcdefghi", "abcdefgh", strict=True):
        levels.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    text = "\n".join(levels) + "\n"
    assert len(text) < 400  # 9^9 = 387 million strings once expanded
    assert config_problems(text, tmp_path) == [
        "f:7: (top level): the document holds more than 5,000,000 values once its aliases"
        " are expanded (an alias counts as everything its anchor holds, so aliases of"
        " aliases multiply); write the repeated parts out, or use fewer levels of aliases"
    ]


def test_aliases_and_merges_load_and_a_shared_mistake_is_reported_where_written(
    tmp_path: Path,
) -> None:
    """Anchors are how people keep 10,000 links short: they load as YAML says, and a
    mistake in the shared part points at the line it is written on."""
    text = """\
customers: [{id: acme, name: ACME}]
links:
  - id: hq
    customer: acme
    probes: [&ping {id: icmp, kind: icmp, host: 127.0.0.1, interval: 30s}]
  - id: dc
    customer: acme
    probes: [{<<: *ping, interval: 1m}]
  - {id: br, customer: acme, probes: [*ping]}
"""
    config = parse_config(text, environ={})
    assert [link.probes[0].interval for link in config.links] == [
        timedelta(seconds=30),
        timedelta(minutes=1),
        timedelta(seconds=30),
    ]
    not_a_duration = (
        "'30x' is not a duration; use a number with a unit ms, s, m, h, d or w, e.g. 200ms,"
        " 30s, 5m, 72h or 1h30m"
    )
    assert config_problems(text.replace("30s", "30x"), tmp_path) == [
        f"f:5: links[0].probes[0].interval: {not_a_duration}",
        f"f:5: links[2].probes[0].interval: {not_a_duration}",
    ]


def test_a_key_given_twice_names_both_lines(tmp_path: Path) -> None:
    """YAML would keep the last silently: which one the author meant is unknowable."""
    text = VALID.replace(
        "    probes: [{id: icmp, kind: icmp, host: 127.0.0.1}]\n",
        "    probes:\n"
        "      - id: icmp\n"
        "        kind: icmp\n"
        "        interval: 30s\n"
        "        host: 127.0.0.1\n"
        "        interval: 5m\n",
    )
    text = f"data_dir: /var/lib/linkwatch\n{text}data_dir: /srv/linkwatch\n"
    assert config_problems(text, tmp_path) == [
        "f:11: links[0].probes[0].interval: key 'interval' is given twice, on lines 9 and"
        " 11; give it once (the file does not say which one is meant)",
        "f:13: data_dir: key 'data_dir' is given twice, on lines 1 and 13; give it once"
        " (the file does not say which one is meant)",
    ]


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "# links will come later\n", "null\n", "~\n", "---\n", "{}\n", "---\n...\n"],
    ids=["empty", "blank-lines", "comments", "null", "tilde", "document-marker", "empty-map",
         "empty-document"],
)  # fmt: skip
def test_an_empty_file_is_refused_as_empty(text: str, tmp_path: Path) -> None:
    """Not "OK, 0 links": an empty file is a save gone wrong, and reloaded it would stop
    every probe and cancel every maintenance window."""
    assert config_problems(text, tmp_path) == [
        "f:1: (top level): the file is empty (nothing but comments, or null): no links, no"
        " contracts; config/example.yaml shows every setting"
    ]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        pytest.param(
            "links.0.probes.0.interval",
            "99999999999999999999w",
            "'99999999999999999999w' is longer than 36500d (100 years); use a shorter duration",
            id="duration-overflow",
        ),
        pytest.param(
            "database",
            {"retention": "36501d"},
            "'36501d' is longer than 36500d (100 years); use a shorter duration",
            id="duration-past-any-calendar",
        ),
        pytest.param(
            "contracts.0.fee",
            "1e999999999",
            "1E+999999999 is more than any amount billed; use at most 1,000,000,000,000 (in"
            " the currency, per window)",
            id="fee-beyond-any-amount",
        ),
        pytest.param(
            "contracts.0.target",
            "1e-999999999",
            "'1e-999999999': decimal input should have no more than 6 decimal places",
            id="target-finer-than-any-contract",
        ),
        pytest.param(
            "contracts.0.credit",
            {"per_step": "0.0000001"},
            "'0.0000001': decimal input should have no more than 6 decimal places",
            id="percent-with-7-decimals",
        ),
        pytest.param(
            "links.0.thresholds",
            {"rtt_ms": float("inf")},
            "inf: input should be a finite number",
            id="infinite-threshold",
        ),
        pytest.param(
            "contracts.0.fee",
            None,
            "fee is null; give a value, or leave fee out to take the plan's (or the default)",
            id="null-term",
        ),
    ],
)
def test_numbers_beyond_what_billing_and_dates_can_hold_are_named(
    path: str, value: Any, expected: str
) -> None:
    found = problems(edit(path, value))
    assert any(line.endswith(expected) for line in found), "\n".join(found)


def test_a_huge_value_is_shortened_in_its_message(tmp_path: Path) -> None:
    zone = "Europe/" + "x" * 1_000_000
    found = config_problems(VALID + f"database: {{retention: {'9' * 5000}d}}\n", tmp_path)
    found += config_problems(
        VALID.replace("name: ACME}", f"name: ACME, timezone: {zone}}}"), tmp_path
    )
    assert found == [
        "f:7: database.retention: '9999999999999999999999999999999999999999'... (5,001"
        " characters) is longer than 36500d (100 years); use a shorter duration",
        "f:1: customers[0].timezone: 'Europe/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (1,000,007"
        " characters) is not a known time zone; use an IANA name such as Europe/Berlin or UTC",
    ]


def test_a_number_too_long_for_any_setting_is_named_at_its_path(tmp_path: Path) -> None:
    found = config_problems(VALID + f"collector: {{queue_size: {'9' * 5000}}}\n", tmp_path)
    assert found == [
        "f:7: collector.queue_size: '9999999999999999999999999999999999999999'... (5,000"
        " characters) is too long for a number; no setting takes one of more than 100"
        " characters"
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            b"customers:\n  - {id: acme, name: M\xfcller GmbH}\n",
            "f:2: (top level): byte 0xfc in column 23 is not UTF-8 (is the file Latin-1 or"
            " Windows-1252?); save it as UTF-8",
            id="latin-1",
        ),
        pytest.param(
            "customers: []\n".encode("utf-16"),
            "f:1: (top level): the file is UTF-16 text (it starts with a UTF-16 byte order"
            " mark); save it as UTF-8",
            id="utf-16",
        ),
        pytest.param(
            b"customers: []\n\x7fELF\x02\x01\x00\x00",
            "f:2: (top level): the file contains NUL bytes, so it is not text (or it is UTF-16"
            " or UTF-32 without a byte order mark); save it as UTF-8",
            id="binary",
        ),
        pytest.param(
            b"customers: []\nlinks: [\x07]\n",
            "f:2: (top level): not valid YAML: character #x0007 is not allowed (control"
            " characters are not allowed)",
            id="control-character",
        ),
        pytest.param(
            VALID.encode() + b"---\ncustomers: []\n",
            "f:7: (top level): the file holds more than one YAML document (another starts"
            " after ---); a config is one document",
            id="two-documents",
        ),
        pytest.param(
            b"customers: !!python/object/apply:os.system [echo hi]\n",
            "f:1: customers: tag '!!python/object/apply:os.system' is not supported; write the"
            " value without a tag (quote it to make it text)",
            id="python-tag",
        ),
        pytest.param(
            b"customers: [{id: acme, name: *nobody}]\n",
            "f:1: customers[0].name: alias *nobody has no anchor &nobody before it",
            id="alias-to-nothing",
        ),
        pytest.param(
            b"customers: &loop [*loop]\n",
            "f:1: customers[0]: alias *loop is inside its own anchor &loop: a loop",
            id="alias-loop",
        ),
        pytest.param(
            b"customers: " + b"[" * 100 + b"]" * 100 + b"\n",
            "f:1: (top level): values are nested more than 64 levels deep; a Linkwatch config"
            " needs fewer than 10",
            id="deep-nesting",
        ),
    ],
)
def test_bytes_that_are_no_config_are_named_with_their_line(
    raw: bytes, expected: str, tmp_path: Path
) -> None:
    assert config_problems(raw, tmp_path) == [expected]


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "notepad.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    assert load_config(path, environ={}).customers[0].id == "acme"


def test_a_file_larger_than_any_config_is_not_read_whole(tmp_path: Path) -> None:
    found = config_problems(VALID + "#" * 2000, tmp_path, Limits(max_bytes=1024))
    assert found == [
        "f: (top level): the file is larger than 0 MiB, more than any config needs (80,000"
        " links take about 32 MiB); is it the right file?"
    ]


def test_an_http_probe_with_an_unreadable_ca_file_or_a_regex_too_deep_is_named() -> None:
    probe = {"id": "web", "kind": "http", "url": "http://127.0.0.1:8080/", "ca_file": "a" * 5000}
    assert (
        "links[0].probes[0]: ca_file 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'... (5,000"
        " characters) cannot be read: File name too long"
    ) in problems(edit("links.0.probes.0", probe))
    probe = {"id": "web", "kind": "http", "url": "http://127.0.0.1:8080/"}
    probe["body_regex"] = "(" * 1000 + ")" * 1000
    assert (
        "links[0].probes[0]: body_regex '(((((((((((((((((((((((((((((((((((((((('... (2,000"
        " characters) nests its groups too deeply; simplify it"
    ) in problems(edit("links.0.probes.0", probe))


def test_environment_references_in_a_long_text_take_linear_time() -> None:
    """A text of many "${x:-" and no "}" used to take minutes (a regex backtracking over
    the rest of the text for each); it is left as written."""
    community = "${X:-" * 200_000
    data = edit(
        "links.0.probes.0",
        {"id": "s", "kind": "snmp", "host": "127.0.0.1", "community": community},
    )
    config = parse_config(yaml.safe_dump(data), environ={}, limits=Limits(seconds=10))
    assert config.links[0].probes[0].community == community  # type: ignore[union-attr]
