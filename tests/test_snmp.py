"""SNMP probes against a real snmpd in a network namespace the tests create and remove.

The lab: namespace ``lwsnmp-<pid>`` joined to this one by a veth pair (198.18.N.1 here,
198.18.N.2 there: RFC 2544 benchmarking space, reachable only over that pair), a second
veth pair wholly inside the namespace whose ``sta`` end is the watched "customer port",
and net-snmp's snmpd listening on 198.18.N.2 with its own config (v2c community and a
v3 SHA/AES authPriv user). Net-snmp 5.9 keeps ifAlias itself rather than reading the
kernel's alias, so the alias is set both ways: ``ip link ... alias`` and an SNMP SET.
Tests that need root, ``ip netns`` or snmpd skip with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from collector.database import Database
from collector.spool import decode_samples, encode_samples
from collector.writer import write_samples
from kernel.config import SnmpProbe
from kernel.domain import Outcome, ProbeResult, Sample
from probes import PROBES, ProbeContext
from probes.snmp.counters import Snapshot, rates_between
from probes.snmp.mib import IF_ALIAS, IF_HC_IN_OCTETS, IF_IN_ERRORS, IF_IN_OCTETS
from probes.snmp.poller import SnmpPoller
from probes.snmp.probe import interpret, probe_snmp
from probes.snmp.targets import Reading
from probes.snmp.v2c import decode_response, encode_get
from probes.snmp.wire import encode_oid, null_varbind
from tests.helpers import linkwatch

NET = 100 + os.getpid() % 100
HOST_IP, AGENT_IP = f"198.18.{NET}.1", f"198.18.{NET}.2"
NS = f"lwsnmp-{os.getpid()}"
V3_AUTH, V3_PRIV = "lw-auth-secret", "lw-priv-secret"
# v3 users of the lab agent: name -> (net-snmp's auth protocol, its priv protocol). Its
# AES192C/AES256C extend the key as Reeder (pysnmp's usmAesCfb256Protocol, our aes256);
# its AES192/AES256 as Blumenthal (our aes256-blumenthal).
V3_USERS = {
    "lwuser": ("SHA", "AES"),
    "lwmd5": ("MD5", "AES"),
    "lwsha224": ("SHA-224", "AES"),
    "lwsha256": ("SHA-256", "AES"),
    "lwsha384": ("SHA-384", "AES256C"),
    "lwsha512": ("SHA-512", "AES"),
    "lwaes256": ("SHA", "AES256C"),
    "lwmd5aes256": ("MD5", "AES256C"),
    "lwsha512aes256": ("SHA-512", "AES256C"),
    "lwdes": ("SHA", "DES"),
    "lwmd5des": ("MD5", "DES"),
    "lwaes192": ("SHA", "AES192C"),
    "lwaes192b": ("SHA-256", "AES192"),
    "lwaes256b": ("SHA", "AES256"),
    "lwmd5aes256b": ("MD5", "AES256"),
}
RW_COMMUNITY = "lw-test-rw"


def _lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns"
    for tool in ("ip", "snmpd", "snmpset"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install snmpd snmp iproute2)"
    probe = f"lwsnmp-check-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


LAB_UNAVAILABLE = _lab_unavailable()
needs_lab = pytest.mark.skipif(LAB_UNAVAILABLE is not None, reason=str(LAB_UNAVAILABLE))


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def in_ns(*args: str) -> str:
    return run("ip", "netns", "exec", NS, *args)


class Lab:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 16161
        self.conf = directory / "snmpd.conf"
        self.conf.write_text(
            f"agentAddress udp:{AGENT_IP}:{self.port}\n"
            "rocommunity public default\n"
            f"rwcommunity {RW_COMMUNITY} {HOST_IP}\n"
            + "".join(
                f'createUser {user} {auth} "{V3_AUTH}" {priv} "{V3_PRIV}"\nrouser {user} priv\n'
                for user, (auth, priv) in V3_USERS.items()
            )
            + f"[snmp] persistentDir {directory / 'persist'}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "MIBS": "",  # no MIB noise
            "MIBDIRS": str(self.directory),
            # Our snmpd.conf, and the state snmpd persists (-C would skip reading that):
            # a restart keeps the engine ID and counts engineBoots up, as devices do.
            "SNMPCONFPATH": f"{self.directory}:{self.directory / 'persist'}",
        }
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", NS, "snmpd", "-f", "-Lo"],
            stdout=(self.directory / "snmpd.log").open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.snmpget("1.3.6.1.2.1.1.3.0") is not None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"snmpd did not answer; see {self.directory / 'snmpd.log'}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def snmpget(self, oid: str) -> str | None:
        done = subprocess.run(
            ["snmpget", "-v2c", "-c", "public", "-r0", "-t0.3", "-On", "-Oqv",
             f"{AGENT_IP}:{self.port}", oid],
            capture_output=True, text=True, check=False, env={**os.environ, "MIBS": ""},
        )  # fmt: skip
        return done.stdout.strip() if done.returncode == 0 else None

    def set_alias(self, interface: str, alias: str) -> None:
        in_ns("ip", "link", "set", "dev", interface, "alias", alias)
        if_index = int(in_ns("cat", f"/sys/class/net/{interface}/ifindex"))
        oid = ".".join(map(str, (*IF_ALIAS, if_index)))
        run("snmpset", "-v2c", "-c", RW_COMMUNITY, "-r1", "-t1", f"{AGENT_IP}:{self.port}",
            oid, "s", alias)  # fmt: skip

    def spec(self, **fields: Any) -> SnmpProbe:
        return SnmpProbe.model_validate(
            {
                "id": "snmp",
                "kind": "snmp",
                "host": f"{AGENT_IP}:{self.port}",
                "community": "public",
                "timeout": "1s",
                "retries": 1,
                **fields,
            }
        )

    def v3(self, **fields: Any) -> SnmpProbe:
        v3 = {"version": "3", "community": None, "user": "lwuser"}
        return self.spec(**{**v3, "auth_key": V3_AUTH, "priv_key": V3_PRIV, **fields})


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if LAB_UNAVAILABLE is not None:
        pytest.skip(LAB_UNAVAILABLE)
    directory = Path(tempfile.mkdtemp(prefix="linkwatch-snmp-"))
    (directory / "persist").mkdir()
    host_end = f"lws{os.getpid() % 100000}"
    run("ip", "netns", "add", NS)
    try:
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", "uplink", "netns", NS)
        run("ip", "addr", "add", f"{HOST_IP}/30", "dev", host_end)
        run("ip", "link", "set", host_end, "up")
        in_ns("ip", "link", "set", "lo", "up")
        in_ns("ip", "addr", "add", f"{AGENT_IP}/30", "dev", "uplink")
        in_ns("ip", "link", "set", "uplink", "up")
        in_ns("ip", "link", "add", "sta", "type", "veth", "peer", "name", "stb")
        in_ns("ip", "link", "set", "sta", "up")
        in_ns("ip", "link", "set", "stb", "up")
        the_lab = Lab(directory)
        the_lab.start()
        the_lab.set_alias("sta", "CID-1001")
        yield the_lab
    finally:
        with contextlib.suppress(NameError):
            the_lab.stop()
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)
        shutil.rmtree(directory, ignore_errors=True)


@pytest_asyncio.fixture
async def ctx() -> AsyncIterator[ProbeContext]:
    context = ProbeContext(icmp_privileged=None, icmp_error="not needed here")
    yield context
    await context.snmp.close()


async def until(
    probe: Callable[[], Any], done: Callable[[ProbeResult], bool], timeout_s: float = 20
) -> ProbeResult:
    """Probe until `done` holds: net-snmp caches ifTable for a few seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        result: ProbeResult = await probe()
        if done(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.5)


# --- against snmpd ------------------------------------------------------------------------


def test_snmp_is_registered() -> None:
    assert PROBES["snmp"] is probe_snmp


@needs_lab
@pytest.mark.parametrize("fast_v2c", [True, False], ids=["fast-codec", "pysnmp"])
async def test_an_interface_by_alias_name_descr_or_index_is_up_in_one_request(
    lab: Lab, fast_v2c: bool
) -> None:
    ctx = ProbeContext(icmp_privileged=None, snmp=SnmpPoller(fast_v2c=fast_v2c))
    sta_index = int(in_ns("cat", "/sys/class/net/sta/ifindex"))
    specs = [
        lab.spec(interface={"alias": "CID-1001"}),
        lab.spec(interface={"name": "sta"}),
        lab.spec(interface={"descr": "sta"}),
        lab.spec(interface={"index": sta_index}),
        lab.spec(interface={"name": "uplink"}),
    ]
    try:
        results = await asyncio.gather(*(probe_snmp(spec, ctx) for spec in specs))
        for result in results:
            assert result.outcome is Outcome.UP, result.error
        assert [r.metrics["if_index"] for r in results[:4]] == [sta_index] * 4
        assert results[4].metrics["if_index"] != sta_index
        # Five probes of one device, arriving together: one GET (after the name walks).
        assert ctx.snmp.requests == 1
        assert results[0].phases_ms["snmp"] > 0
    finally:
        await ctx.snmp.close()


@needs_lab
async def test_v3_auth_priv_with_sha_and_aes_is_up(lab: Lab, ctx: ProbeContext) -> None:
    result = await probe_snmp(lab.v3(interface={"alias": "CID-1001"}), ctx)
    assert result.outcome is Outcome.UP, result.error
    assert result.metrics["if_index"] > 0


@needs_lab
async def test_v3_wrong_password_is_unknown_with_an_authentication_error(
    lab: Lab, ctx: ProbeContext
) -> None:
    good, bad = lab.v3(), lab.v3(auth_key="not-the-password")
    # Same user name, different keys, same poller: neither may spoil the other.
    results = await asyncio.gather(probe_snmp(bad, ctx), probe_snmp(good, ctx))
    assert results[0].outcome is Outcome.UNKNOWN
    assert results[0].error is not None
    assert "authentication failed" in results[0].error
    assert results[1].outcome is Outcome.UP, results[1].error


@needs_lab
async def test_the_link_going_down_under_an_admin_up_interface_is_down(
    lab: Lab, ctx: ProbeContext
) -> None:
    spec = lab.spec(interface={"alias": "CID-1001"})
    assert (await probe_snmp(spec, ctx)).outcome is Outcome.UP
    in_ns("ip", "link", "set", "stb", "down")  # the far end: sta loses its carrier
    try:
        result = await until(lambda: probe_snmp(spec, ctx), lambda r: r.outcome is Outcome.DOWN)
        assert result.outcome is Outcome.DOWN
        assert result.error is not None
        assert result.error.startswith("oper-")
        assert result.error != "admin-down"
    finally:
        in_ns("ip", "link", "set", "stb", "up")
    result = await until(lambda: probe_snmp(spec, ctx), lambda r: r.outcome is Outcome.UP)
    assert result.outcome is Outcome.UP, result.error


@needs_lab
async def test_an_admin_down_interface_is_down_with_cause_admin_down(
    lab: Lab, ctx: ProbeContext
) -> None:
    spec = lab.spec(interface={"name": "sta"})
    in_ns("ip", "link", "set", "sta", "down")
    try:
        result = await until(lambda: probe_snmp(spec, ctx), lambda r: r.outcome is Outcome.DOWN)
        assert result.outcome is Outcome.DOWN
        assert result.error == "admin-down"
    finally:
        in_ns("ip", "link", "set", "sta", "up")
    await until(lambda: probe_snmp(spec, ctx), lambda r: r.outcome is Outcome.UP)


def _udp_burst(datagrams: int, size: int) -> int:
    """Send to the namespace's address (discard port); returns bytes on the wire."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(datagrams):
            sock.sendto(b"x" * size, (AGENT_IP, 9))
    return datagrams * (size + 8 + 20 + 14)  # UDP, IPv4 and Ethernet headers


@needs_lab
async def test_traffic_across_the_veth_shows_as_a_plausible_rate(
    lab: Lab, ctx: ProbeContext
) -> None:
    spec = lab.spec(interface={"name": "uplink"})
    first = await probe_snmp(spec, ctx)
    assert first.outcome is Outcome.UP, first.error
    assert "in_bps" not in first.metrics  # nothing to compare with yet
    # Wait out net-snmp's interface cache so the burst falls between two fresh readings.
    await asyncio.sleep(4)
    await probe_snmp(spec, ctx)
    began = time.monotonic()
    sent = await asyncio.to_thread(_udp_burst, 3000, 1000)
    await asyncio.sleep(4)
    result = await probe_snmp(spec, ctx)
    elapsed = time.monotonic() - began
    assert result.outcome is Outcome.UP, result.error
    expected_bps = sent * 8 / elapsed
    assert 0.6 * expected_bps < result.metrics["in_bps"] < 1.6 * expected_bps, (
        result.metrics,
        expected_bps,
    )
    assert result.metrics["in_errors_per_s"] == 0
    assert result.metrics["out_bps"] < result.metrics["in_bps"]


@needs_lab
async def test_an_agent_restart_gives_no_bogus_rate(lab: Lab, ctx: ProbeContext) -> None:
    spec = lab.spec(interface={"name": "uplink"})
    await probe_snmp(spec, ctx)
    await asyncio.sleep(1.2)
    before = await probe_snmp(spec, ctx)
    assert "in_bps" in before.metrics
    await asyncio.to_thread(lab.restart)
    after = await probe_snmp(spec, ctx)
    assert after.outcome is Outcome.UP, after.error
    # sysUpTime went back: the kernel's counters did not reset, but no rate is given
    # across the restart rather than one computed over the wrong time.
    assert "in_bps" not in after.metrics
    assert after.metrics["if_index"] == before.metrics["if_index"]
    await asyncio.sleep(1.2)
    again = await probe_snmp(spec, ctx)
    assert "in_bps" in again.metrics
    assert again.metrics["in_bps"] < 10_000_000


@needs_lab
async def test_a_wrong_community_is_down_with_a_timeout_naming_the_community(
    lab: Lab, ctx: ProbeContext
) -> None:
    result = await probe_snmp(lab.spec(community="not-public", timeout="300ms"), ctx)
    assert result.outcome is Outcome.DOWN
    assert result.error is not None
    assert result.error.startswith("timeout")
    assert "community" in result.error


@needs_lab
async def test_an_unknown_alias_is_unknown_with_a_clear_error(lab: Lab, ctx: ProbeContext) -> None:
    result = await probe_snmp(lab.spec(interface={"alias": "CID-9999"}), ctx)
    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None
    assert "no interface with ifAlias 'CID-9999'" in result.error


@needs_lab
async def test_an_unknown_index_is_unknown_with_a_clear_error(lab: Lab, ctx: ProbeContext) -> None:
    result = await probe_snmp(lab.spec(interface={"index": 999_999}), ctx)
    assert result.outcome is Outcome.UNKNOWN
    assert result.error == f"no interface with ifIndex 999999 on {AGENT_IP}:{lab.port}"


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({"community": "public"}, id="v2c"),
        pytest.param(
            {"version": "3", "user": "lwuser", "auth_key": V3_AUTH, "priv_key": V3_PRIV},
            id="v3",  # no reply to the engine discovery
        ),
    ],
)
async def test_nothing_listening_is_down_with_timeout(
    ctx: ProbeContext, credentials: dict[str, str]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = SnmpProbe.model_validate(
        {
            "id": "snmp",
            "kind": "snmp",
            "host": f"127.0.0.1:{port}",
            **credentials,
            "timeout": "200ms",
            "retries": 1,
            "interface": {"index": 1},
        }
    )
    started = time.monotonic()
    result = await probe_snmp(spec, ctx)
    assert result.outcome is Outcome.DOWN
    assert result.error is not None
    assert result.error.startswith(f"timeout: no reply from 127.0.0.1:{port} after 2 x 0.2s")
    assert time.monotonic() - started < spec.max_run_time().total_seconds() + 0.5


# --- configuration, as check-config reads it ----------------------------------------------

SNMP_CONFIG = """\
customers: [{id: acme, name: ACME Corp, timezone: Europe/Berlin}]
links:
  - id: acme-hq
    customer: acme
    probes:
"""


def _v3_probe(probe_id: str, auth: str, priv: str) -> str:
    return (
        f"      - {{id: {probe_id}, kind: snmp, host: '127.0.0.1:16161', version: '3',"
        f" user: u, auth_key: auth-secret, priv_key: priv-secret, auth_protocol: {auth},"
        f" priv_protocol: {priv}, interface: {{index: 1}}}}\n"
    )


def test_check_config_takes_every_usm_protocol_name_net_snmp_and_cisco_use(
    tmp_path: Path,
) -> None:
    config = tmp_path / "v3.yaml"
    pairs = [
        ("sha224", "aes192"),
        ("sha384", "aes192c"),
        ("sha", "aes192-blumenthal"),
        ("sha512", "aes256c"),
        ("md5", "aes256-blumenthal"),
        ("sha256", "des"),
    ]
    config.write_text(
        SNMP_CONFIG + "".join(_v3_probe(f"p{n}", *pair) for n, pair in enumerate(pairs))
    )
    result = linkwatch("check-config", str(config))
    assert result.returncode == 0, result.stderr


def test_check_config_rejects_a_blank_interface_name_and_unknown_protocols(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        SNMP_CONFIG + "      - {id: port, kind: snmp, host: '127.0.0.1:16161', community: public,"
        " interface: {alias: ''}}\n" + _v3_probe("v3", "sha1", "aes128")
    )
    result = linkwatch("check-config", str(config))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[1:] == [
        f"  {config}:6: links[0].probes[0].interface.alias: '' is blank and would match every"
        " interface without one; give the interface's name, or its index",
        f"  {config}:7: links[0].probes[1].auth_protocol: 'sha1' is not allowed; use one of"
        " 'md5', 'sha', 'sha224', 'sha256', 'sha384' or 'sha512'",
        f"  {config}:7: links[0].probes[1].priv_protocol: 'aes128' is not allowed; use one of"
        " 'aes', 'aes192', 'aes192c', 'aes192-blumenthal', 'aes256', 'aes256c',"
        " 'aes256-blumenthal' or 'des'",
    ]


# --- logic, no agent needed ---------------------------------------------------------------


def _snapshot(ticks: int, in_octets: int, in_errors: int = 0) -> Snapshot:
    return Snapshot(ticks, 0.0, {IF_HC_IN_OCTETS: in_octets, IF_IN_ERRORS: in_errors})


@pytest.mark.parametrize(
    ("old", "new", "expected_bps"),
    [
        pytest.param(1_000, 126_000, 1_000_000.0, id="plain"),
        pytest.param((1 << 64) - 25_000, 100_000, 1_000_000.0, id="counter64-wrap"),
        pytest.param(5_000_000, 1_000, None, id="counter-reset-no-rate"),
    ],
)
def test_octet_rates_unwrap_64_bit_counters_and_skip_resets(
    old: int, new: int, expected_bps: float | None
) -> None:
    rates = rates_between(_snapshot(100, old), _snapshot(100 + 100, new))  # 1 s of agent time
    assert rates.get("in_bps") == expected_bps


@pytest.mark.parametrize(
    ("old", "new", "speed_bps", "expected"),
    [
        pytest.param((1 << 32) - 3, 7, 1e9, 5.0, id="wrap-at-gigabit"),
        # Cleared from above 2^31 with the agent up: 2^31 errors in 1 s is no wrap.
        pytest.param((1 << 31) + 5, 3, 1e9, None, id="cleared-at-gigabit"),
        pytest.param((1 << 32) - 3, 7, None, None, id="speed-unknown-no-wrap"),
    ],
)
def test_error_counters_wrap_only_where_the_interface_could_count_that_many(
    old: int, new: int, speed_bps: float | None, expected: float | None
) -> None:
    rates = rates_between(_snapshot(0, 0, old), _snapshot(200, 0, new), speed_bps)
    assert rates.get("in_errors_per_s") == expected


def _octets32(ticks: int, in_octets: int) -> Snapshot:
    return Snapshot(ticks, 0.0, {IF_IN_OCTETS: in_octets})


@pytest.mark.parametrize(
    ("old", "new", "speed_bps", "expected_bps"),
    [
        pytest.param(4_294_000_000, 20_000, 100e6, 7_898_368.0, id="wrap-on-100M"),
        # 2^31 + 1,000 cleared to 1,000: as a wrap, 17 Gbit/s in 1 s on a 100 Mbit/s
        # port; it was cleared (clear counters), so no rate.
        pytest.param((1 << 31) + 1_000, 1_000, 100e6, None, id="cleared-on-100M"),
        pytest.param(4_294_000_000, 20_000, None, 7_898_368.0, id="wrap-speed-unknown"),
    ],
)
def test_counter32_octets_wrap_unless_the_rate_exceeds_the_line(
    old: int, new: int, speed_bps: float | None, expected_bps: float | None
) -> None:
    rates = rates_between(_octets32(0, old), _octets32(100, new), speed_bps)  # 1 s of agent time
    assert rates.get("in_bps") == expected_bps
    if expected_bps is not None and speed_bps is not None:
        assert rates["in_utilisation_pct"] == pytest.approx(100 * expected_bps / speed_bps)


@pytest.mark.parametrize(
    ("admin", "oper", "outcome", "error"),
    [
        (1, 1, Outcome.UP, None),
        (2, 2, Outcome.DOWN, "admin-down"),
        (1, 2, Outcome.DOWN, "oper-down"),
        (1, 7, Outcome.DOWN, "oper-lowerLayerDown"),
        (1, 4, Outcome.UNKNOWN, "ifOperStatus 4 (unknown) on ifIndex 3"),
    ],
)
def test_interface_status_maps_to_an_outcome(
    admin: int, oper: int, outcome: Outcome, error: str | None
) -> None:
    reading = Reading("d:161", 1.0, 5.0, 3, oper, admin, {"if_index": 3.0})
    result = interpret(reading)
    assert (result.outcome, result.error) == (outcome, error)
    assert result.metrics == {"if_index": 3.0}
    assert result.rtt_ms is None  # an agent's reply time is not the link's latency


def test_the_v2c_codec_reads_what_an_agent_would_send() -> None:
    oid = encode_oid((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 3))
    request = encode_get(b"public", 77, [null_varbind(oid)])
    assert request.startswith(b"\x30")
    # The response an agent builds: same envelope, PDU tag 0xA2, a Counter64 value.
    counter = b"\x46\x09\x00" + (1 << 63).to_bytes(8, "big")
    varbind = b"\x30" + bytes([2 + len(oid) + len(counter)]) + b"\x06"
    varbind += bytes([len(oid)]) + oid + counter
    pdu = b"\x02\x01\x4d\x02\x01\x00\x02\x01\x00\x30" + bytes([len(varbind)]) + varbind
    body = b"\x02\x01\x01\x04\x06public\xa2" + bytes([len(pdu)]) + pdu
    community, request_id, response = decode_response(b"\x30" + bytes([len(body)]) + body)
    assert (community, request_id, response.error_status) == (b"public", 77, 0)
    assert response.varbinds == [(oid, 1 << 63)]


# --- metrics in storage -------------------------------------------------------------------

METRICS = {"in_bps": 1.5e9, "out_bps": 2_000.0, "in_errors_per_s": 0.25, "if_index": 3.0}


def _sample(metrics: dict[str, float]) -> Sample:
    return Sample(
        link_id="link-a",
        probe_id="snmp",
        observed_at=datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=UTC),
        outcome=Outcome.UP,
        metrics=metrics,
    )


def test_spool_round_trips_metrics_and_reads_records_without_them() -> None:
    with_metrics, without = _sample(METRICS), _sample({})
    assert decode_samples(encode_samples([with_metrics, without])) == [with_metrics, without]
    old_record = (
        b'{"v":1,"samples":[["link-a","icmp","2026-01-05T12:00:00.000000+00:00","up",'
        b"1.5,1.0,2.0,0.1,0.0,null]]}"
    )
    [old] = decode_samples(old_record)
    assert old.metrics == {}
    assert old.rtt_ms == 1.5


async def test_writer_stores_metrics_as_jsonb(database: Database) -> None:
    samples = [_sample(METRICS), _sample({})]
    samples[1] = Sample(**{**_fields(samples[1]), "link_id": "link-b"})
    assert await write_samples(database, samples) == 2
    assert await write_samples(database, samples) == 0  # the staged path carries it too
    async with database.connection() as conn:
        cur = await conn.execute("SELECT link_id, metrics FROM samples ORDER BY link_id")
        rows = await cur.fetchall()
    assert rows == [("link-a", METRICS), ("link-b", None)]


def _fields(sample: Sample) -> dict[str, Any]:
    return {name: getattr(sample, name) for name in Sample.__slots__}  # type: ignore[attr-defined]
