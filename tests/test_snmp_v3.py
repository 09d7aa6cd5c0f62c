"""SNMPv3 (USM) through the fast codec of `probes.snmp.v3`, against the snmpd lab.

The lab (namespace, veth pairs, snmpd with one v3 user per protocol pair) is the one of
`tests.test_snmp`; this module gets its own instance of it. The codec's key derivation
is checked against RFC 3414's vectors, and against pysnmp where the RFCs give none.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.type.univ import OctetString
from pysnmp.hlapi.v3arch import asyncio as hlapi
from pysnmp.proto.secmod.eso.priv.aes192 import AesBlumenthal192
from pysnmp.proto.secmod.eso.priv.aes256 import Aes256, AesBlumenthal256
from pysnmp.proto.secmod.rfc7860.auth.hmacsha2 import HmacSha2

from kernel.config import SnmpProbe
from kernel.domain import Outcome
from probes import ProbeContext
from probes.snmp.mib import IF_ADMIN_STATUS, IF_OPER_STATUS, INTERFACE_COLUMNS, SYS_UPTIME
from probes.snmp.poller import SnmpPoller
from probes.snmp.probe import probe_snmp
from probes.snmp.targets import DeviceKey
from probes.snmp.transport import Peer, RequestCounts, Transport
from probes.snmp.v2c import decode_response
from probes.snmp.v3 import (
    WRONG_DIGESTS,
    Session,
    UsmUser,
    V3Client,
    decode_discovery,
    decode_reply,
    encode_discovery,
    encode_get,
    encode_message,
    localise_key,
    password_to_key,
    priv_key,
)
from probes.snmp.wire import (
    OCTETS,
    OID,
    REPORT,
    RESPONSE,
    SEQUENCE,
    encode_oid,
    encode_pdu,
    integer,
    message_id,
    null_varbind,
    tlv,
)
from tests import test_snmp as snmp_lab
from tests.test_snmp import AGENT_IP, V3_AUTH, V3_PRIV, Lab, in_ns, needs_lab

# The lab's fixtures, under the names the tests ask for.
lab = snmp_lab.lab
ctx = snmp_lab.ctx


def _index(interface: str) -> int:
    return int(in_ns("cat", f"/sys/class/net/{interface}/ifindex"))


def _user(name: str = "lwuser", auth: str = "sha", priv: str = "aes") -> UsmUser:
    return UsmUser(name, auth, V3_AUTH, priv, V3_PRIV)


def _oids(*indexes: int) -> list[tuple[int, ...]]:
    return [SYS_UPTIME, *((*column, i) for i in indexes for column in INTERFACE_COLUMNS)]


async def _pysnmp_values(lab: Lab, oids: list[tuple[int, ...]]) -> dict[bytes, Any]:
    """The same GET as the poller sends it through pysnmp (fast_v3=False)."""
    transport = Transport(RequestCounts(), max_in_flight=1, fast_v2c=True, fast_v3=False)
    address = (AGENT_IP, lab.port)
    peer = Peer(DeviceKey.from_spec(lab.v3()), asyncio.Semaphore(1), address=address)
    try:
        got = await transport.get(peer, oids)
    finally:
        transport.close()
    assert got.error_status == 0
    return got.values


# --- against snmpd ------------------------------------------------------------------------


@needs_lab
async def test_the_fast_path_reads_the_values_pysnmp_reads_in_the_same_get(lab: Lab) -> None:
    oids = _oids(_index("sta"), _index("uplink"))
    varbinds = [null_varbind(encode_oid(oid)) for oid in oids]
    client = V3Client()
    address = (AGENT_IP, lab.port)
    try:
        before = dict(
            (await client.get(address, _user(), varbinds, timeout_s=1, retries=1)).varbinds
        )
        reference = await _pysnmp_values(lab, oids)
        after = dict(
            (await client.get(address, _user(), varbinds, timeout_s=1, retries=1)).varbinds
        )
    finally:
        client.close()
    assert list(before) == list(reference) == [encode_oid(oid) for oid in oids]
    for oid in oids:
        content = encode_oid(oid)
        if oid[:-1] in (IF_OPER_STATUS, IF_ADMIN_STATUS):
            assert before[content] == reference[content] == after[content] == 1, oid
        else:  # sysUpTime and counters only grow: pysnmp's read falls between ours
            assert isinstance(reference[content], int), oid
            assert before[content] <= reference[content] <= after[content], oid


@needs_lab
async def test_v3_polls_through_the_fast_path_agree_with_pysnmp(lab: Lab) -> None:
    specs = [lab.v3(interface={"alias": "CID-1001"}), lab.v3(interface={"name": "uplink"})]
    results = {}
    for fast in (True, False):
        poller = SnmpPoller(fast_v3=fast)
        context = ProbeContext(icmp_privileged=None, snmp=poller)
        try:
            first = await asyncio.gather(*(probe_snmp(spec, context) for spec in specs))
            await asyncio.sleep(1.2)
            second = await asyncio.gather(*(probe_snmp(spec, context) for spec in specs))
        finally:
            await poller.close()
        results[fast] = (first, second, poller.pysnmp_gets)
    for fast, (first, second, _) in results.items():
        for result in (*first, *second):
            assert result.outcome is Outcome.UP, (fast, result.error)
        assert "in_bps" in second[1].metrics, fast  # our own requests cross the uplink
        assert second[1].metrics["in_errors_per_s"] == 0
    fast_first, pysnmp_first = results[True][0], results[False][0]
    assert [r.metrics["if_index"] for r in fast_first] == [
        r.metrics["if_index"] for r in pysnmp_first
    ]
    assert results[True][2] == 0  # no GET went through pysnmp (the name walks do)
    assert results[False][2] == 2


@needs_lab
@pytest.mark.parametrize(
    ("user", "auth", "priv"),
    [
        ("lwmd5", "md5", "aes"),
        ("lwuser", "sha", "aes"),
        ("lwsha224", "sha224", "aes"),
        ("lwsha256", "sha256", "aes"),
        ("lwsha384", "sha384", "aes256"),
        ("lwsha512", "sha512", "aes"),
        ("lwaes256", "sha", "aes256"),
        ("lwmd5aes256", "md5", "aes256"),
        ("lwsha512aes256", "sha512", "aes256"),
        ("lwaes192", "sha", "aes192c"),
        ("lwaes192b", "sha256", "aes192-blumenthal"),
        ("lwaes256b", "sha", "aes256-blumenthal"),
        ("lwmd5aes256b", "md5", "aes256-blumenthal"),
    ],
)
async def test_every_fast_protocol_pair_interoperates_with_snmpd(
    lab: Lab, user: str, auth: str, priv: str
) -> None:
    client = V3Client()
    try:
        response = await client.get(
            (AGENT_IP, lab.port),
            _user(user, auth, priv),
            [null_varbind(encode_oid(SYS_UPTIME))],
            timeout_s=1,
            retries=1,
        )
    finally:
        client.close()
    [(oid, ticks)] = response.varbinds
    assert oid == encode_oid(SYS_UPTIME)
    assert isinstance(ticks, int)
    assert ticks > 0


@needs_lab
@pytest.mark.parametrize("fast_v3", [True, False], ids=["fast-codec", "pysnmp"])
@pytest.mark.parametrize(
    ("user", "auth", "priv"),
    [
        ("lwmd5", "md5", "aes"),
        ("lwsha224", "sha224", "aes"),
        ("lwsha384", "sha384", "aes256c"),
        ("lwsha512aes256", "sha512", "aes256"),
        ("lwaes192", "sha", "aes192"),
        ("lwaes192b", "sha256", "aes192-blumenthal"),
        ("lwaes256b", "sha", "aes256-blumenthal"),
        ("lwmd5aes256b", "md5", "aes256-blumenthal"),
        ("lwdes", "sha", "des"),
    ],
)
async def test_configured_v3_protocols_poll_up_and_only_des_takes_pysnmp(
    lab: Lab, user: str, auth: str, priv: str, fast_v3: bool
) -> None:
    # Each name as check-config takes it, against net-snmp's user of that protocol pair.
    poller = SnmpPoller(fast_v3=fast_v3)
    context = ProbeContext(icmp_privileged=None, snmp=poller)
    spec = lab.v3(user=user, auth_protocol=auth, priv_protocol=priv, interface={"index": 1})
    try:
        result = await probe_snmp(spec, context)
    finally:
        await poller.close()
    assert result.outcome is Outcome.UP, result.error
    assert poller.pysnmp_gets == (1 if priv == "des" or not fast_v3 else 0)


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


@needs_lab
async def test_closing_the_poller_closes_the_v3_socket(lab: Lab) -> None:
    before = _open_sockets()
    poller = SnmpPoller()
    result = await probe_snmp(
        lab.v3(interface={"index": 1}), ProbeContext(icmp_privileged=None, snmp=poller)
    )
    assert result.outcome is Outcome.UP, result.error
    assert _open_sockets() == before + 1  # the fast path's one socket, no pysnmp engine
    await poller.close()
    await asyncio.sleep(0.01)  # transports close on the loop's next turn
    assert _open_sockets() == before


@needs_lab
async def test_a_wrong_auth_key_is_unknown_naming_the_user_and_the_digest(
    lab: Lab, ctx: ProbeContext
) -> None:
    result = await probe_snmp(lab.v3(auth_key="not-the-auth-key"), ctx)
    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None
    assert result.error.startswith(f"authentication failed at {AGENT_IP}:{lab.port}")
    assert "user 'lwuser'" in result.error
    assert "usmStatsWrongDigests" in result.error
    assert "check auth_key and auth_protocol" in result.error


@needs_lab
async def test_a_wrong_priv_key_is_unknown_with_a_privacy_error_on_every_poll(
    lab: Lab, ctx: ProbeContext
) -> None:
    # net-snmp drops a request it cannot decrypt; that must not pass for a dead device.
    spec = lab.v3(priv_key="not-the-priv-key", timeout="300ms")
    for _ in range(2):
        result = await probe_snmp(spec, ctx)
        assert result.outcome is Outcome.UNKNOWN
        assert result.error is not None
        assert "user 'lwuser'" in result.error
        assert "cannot decrypt" in result.error
        assert "check priv_key and priv_protocol" in result.error


@needs_lab
async def test_an_unknown_user_is_unknown(lab: Lab, ctx: ProbeContext) -> None:
    result = await probe_snmp(lab.v3(user="nobody"), ctx)
    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None
    assert "user 'nobody'" in result.error
    assert "knows no such user (usmStatsUnknownUserNames)" in result.error


@needs_lab
async def test_v3_polls_survive_an_agent_restart_without_a_bogus_rate(
    lab: Lab, ctx: ProbeContext, caplog: pytest.LogCaptureFixture
) -> None:
    spec = lab.v3(interface={"name": "uplink"})
    await probe_snmp(spec, ctx)
    await asyncio.sleep(1.2)
    before = await probe_snmp(spec, ctx)
    assert "in_bps" in before.metrics, before.error
    boots = lab.snmpget("1.3.6.1.6.3.10.2.1.2.0")  # snmpEngineBoots
    await asyncio.to_thread(lab.restart)
    assert lab.snmpget("1.3.6.1.6.3.10.2.1.2.0") != boots  # the engine really rebooted
    with caplog.at_level(logging.INFO, logger="probes.snmp.v3"):
        after = await probe_snmp(spec, ctx)
    assert after.outcome is Outcome.UP, after.error
    assert "engine time resynchronised" in caplog.text
    assert "in_bps" not in after.metrics  # sysUpTime went back: no rate across it
    await asyncio.sleep(1.2)
    again = await probe_snmp(spec, ctx)
    assert again.outcome is Outcome.UP, again.error
    assert 0 <= again.metrics["in_bps"] < 10_000_000  # not a rate across the restart


@needs_lab
async def test_v3_polls_survive_an_agent_that_returns_with_a_new_engine_id(
    lab: Lab, ctx: ProbeContext, caplog: pytest.LogCaptureFixture
) -> None:
    spec = lab.v3(interface={"name": "uplink"})
    assert (await probe_snmp(spec, ctx)).outcome is Outcome.UP
    engine_id = lab.snmpget("1.3.6.1.6.3.10.2.1.1.0")  # snmpEngineID
    await asyncio.to_thread(lab.stop)
    # A reset device: all it persisted is gone (the users come from snmpd.conf again).
    (lab.directory / "persist" / "snmpd.conf").unlink()
    await asyncio.to_thread(lab.start)
    lab.set_alias("sta", "CID-1001")  # net-snmp kept the alias among what was lost
    assert lab.snmpget("1.3.6.1.6.3.10.2.1.1.0") != engine_id
    with caplog.at_level(logging.INFO, logger="probes.snmp.v3"):
        after = await probe_snmp(spec, ctx)
    assert after.outcome is Outcome.UP, after.error
    assert "engine discovered" in caplog.text
    assert "in_bps" not in after.metrics


@needs_lab
async def test_every_kind_of_v3_probe_is_up_at_once_after_the_device_gets_a_new_engine_id(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    # An HA failover or a replaced box: same address and users, another snmpEngineID.
    # DES goes through pysnmp; so do the walks that resolve names, and the alias below
    # is walked for the first time after the change.
    poller = SnmpPoller()
    context = ProbeContext(icmp_privileged=None, snmp=poller)
    before = {
        "des": lab.v3(user="lwdes", priv_protocol="des", interface={"index": _index("sta")}),
        "md5-des": lab.v3(
            user="lwmd5des", auth_protocol="md5", priv_protocol="des", interface={"name": "sta"}
        ),
        "aes-by-name": lab.v3(interface={"name": "uplink"}),
        "aes-by-index": lab.v3(interface={"index": _index("uplink")}),
    }
    after = {**before, "aes-by-alias": lab.v3(interface={"alias": "CID-1001"})}
    try:
        for name, spec in before.items():
            result = await probe_snmp(spec, context)
            assert result.outcome is Outcome.UP, (name, result.error)
        engine_id = lab.snmpget("1.3.6.1.6.3.10.2.1.1.0")
        await asyncio.to_thread(lab.stop)
        (lab.directory / "persist" / "snmpd.conf").unlink()  # all it persisted is gone
        await asyncio.to_thread(lab.start)
        lab.set_alias("sta", "CID-1001")
        assert lab.snmpget("1.3.6.1.6.3.10.2.1.1.0") != engine_id
        with caplog.at_level(logging.INFO, logger="probes"):
            for _ in range(2):
                for name, spec in after.items():
                    result = await probe_snmp(spec, context)
                    assert result.outcome is Outcome.UP, (name, result.error)
    finally:
        await poller.close()
    rediscoveries = [r for r in caplog.records if "discovered again" in r.getMessage()]
    # One line per engine that learnt it (our codec, pysnmp's), not one per probe or poll.
    assert 1 <= len(rediscoveries) <= 2, [r.getMessage() for r in rediscoveries]


@needs_lab
async def test_a_silent_v3_device_is_down_within_its_deadline_and_back_when_it_answers(
    lab: Lab,
) -> None:
    poller = SnmpPoller()
    context = ProbeContext(icmp_privileged=None, snmp=poller)
    specs = [
        lab.v3(interface={"index": 1}, timeout="300ms"),
        lab.v3(user="lwdes", priv_protocol="des", interface={"index": 1}, timeout="300ms"),
    ]
    try:
        for spec in specs:
            assert (await probe_snmp(spec, context)).outcome is Outcome.UP
        await asyncio.to_thread(lab.stop)
        (lab.directory / "persist" / "snmpd.conf").unlink()
        for spec in specs:
            started = time.monotonic()
            result = await probe_snmp(spec, context)
            assert result.outcome is Outcome.DOWN, result.error
            assert result.error is not None
            assert result.error.startswith("timeout: no reply")
            assert time.monotonic() - started < spec.max_run_time().total_seconds() + 0.2
        await asyncio.to_thread(lab.start)  # back, with another engine ID
        lab.set_alias("sta", "CID-1001")
        for spec in specs:
            result = await probe_snmp(spec, context)
            assert result.outcome is Outcome.UP, result.error
    finally:
        await poller.close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _pysnmp_agent(port: int, engine_id: str) -> Iterator[None]:
    agent = subprocess.Popen(
        [sys.executable, "-m", "tests.snmp_pysnmp_agent", str(port), engine_id, "lwuser",
         V3_AUTH, V3_PRIV],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    try:
        assert agent.stdout is not None
        assert agent.stdout.readline().strip() == "ready"
        yield
    finally:
        agent.terminate()
        agent.wait(10)


@pytest.mark.parametrize("fast_v3", [True, False], ids=["fast-codec", "pysnmp"])
async def test_a_pysnmp_agent_back_with_a_new_engine_id_is_up_at_once(
    fast_v3: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # Such agents answer the old engine ID with usmStatsUnknownUserNames, not
    # usmStatsUnknownEngineIDs: any report about credentials once taken means rediscover.
    port = _free_udp_port()
    spec = SnmpProbe.model_validate(
        {
            "id": "snmp",
            "kind": "snmp",
            "host": f"127.0.0.1:{port}",
            "version": "3",
            "user": "lwuser",
            "auth_key": V3_AUTH,
            "priv_key": V3_PRIV,
            "timeout": "1s",
            "interface": {"index": 1},
        }
    )
    poller = SnmpPoller(fast_v3=fast_v3)
    context = ProbeContext(icmp_privileged=None, snmp=poller)
    try:
        with _pysnmp_agent(port, "8000c53f0401020304"):
            result = await probe_snmp(spec, context)
            assert result.outcome is Outcome.UP, result.error
        with _pysnmp_agent(port, "8000c53f04a0b0c0d0"), caplog.at_level(logging.INFO, "probes"):
            for _ in range(3):
                result = await probe_snmp(spec, context)
                assert result.outcome is Outcome.UP, result.error
    finally:
        await poller.close()
    again = [r.getMessage() for r in caplog.records if "discovered again" in r.getMessage()]
    assert len(again) == 1, again  # once, not once per poll


@needs_lab
@pytest.mark.parametrize("drift_s", [1000.0, 10_000_000.0])
async def test_a_drifting_clock_is_resynchronised_and_the_get_succeeds(
    lab: Lab, drift_s: float
) -> None:
    offset = 0.0
    client = V3Client(clock=lambda: time.monotonic() + offset)
    address, varbinds = (AGENT_IP, lab.port), [null_varbind(encode_oid(SYS_UPTIME))]
    try:
        await client.get(address, _user(), varbinds, timeout_s=1, retries=1)
        offset = drift_s  # our clock runs ahead: the agent finds us outside its window
        response = await client.get(address, _user(), varbinds, timeout_s=1, retries=1)
        assert client.resyncs == 1
        await client.get(address, _user(), varbinds, timeout_s=1, retries=1)
        assert client.resyncs == 1  # the new notion of the agent's time holds
    finally:
        client.close()
    assert isinstance(response.varbinds[0][1], int)


# --- the codec, no agent needed -----------------------------------------------------------


@pytest.mark.parametrize(
    ("digest", "master", "localised"),
    [
        pytest.param(
            "md5",
            "9faf3283884e92834ebc9847d8edd963",
            "526f5eed9fcce26f8964c2930787d82b",
            id="A.3.1-md5",
        ),
        pytest.param(
            "sha1",
            "9fb5cc0381497b3793528939ff788d5d79145211",
            "6695febc9288e36282235fc7151f128497b38f3f",
            id="A.3.2-sha",
        ),
    ],
)
def test_password_to_key_gives_the_rfc3414_sample_keys(
    digest: str, master: str, localised: str
) -> None:
    engine_id = bytes(11) + b"\x02"
    key = password_to_key(digest, b"maplesyrup")
    assert key.hex() == master
    assert localise_key(digest, key, engine_id).hex() == localised


@pytest.mark.parametrize(
    ("auth", "digest"),
    [
        (hlapi.USM_AUTH_HMAC128_SHA224, "sha224"),
        (hlapi.USM_AUTH_HMAC192_SHA256, "sha256"),
        (hlapi.USM_AUTH_HMAC256_SHA384, "sha384"),
        (hlapi.USM_AUTH_HMAC384_SHA512, "sha512"),
    ],
)
def test_sha2_keys_match_pysnmp(auth: tuple[int, ...], digest: str) -> None:
    # RFC 7860 gives no sample keys; pysnmp is the implementation this path replaces.
    engine_id = bytes.fromhex("80001f8880e9bd0c1d12667a5100000000")
    theirs = HmacSha2(auth)
    expected = theirs.localize_key(theirs.hash_passphrase(b"maplesyrup"), OctetString(engine_id))
    master = password_to_key(digest, b"maplesyrup")
    assert localise_key(digest, master, engine_id) == bytes(expected)


@pytest.mark.parametrize(
    ("auth", "digest"),
    [
        (hlapi.USM_AUTH_HMAC96_MD5, "md5"),
        (hlapi.USM_AUTH_HMAC96_SHA, "sha1"),
        (hlapi.USM_AUTH_HMAC384_SHA512, "sha512"),
    ],
)
def test_aes256_keys_are_extended_as_pysnmp_extends_them(
    auth: tuple[int, ...], digest: str
) -> None:
    engine_id = bytes.fromhex("80001f8880e9bd0c1d12667a5100000000")
    theirs = Aes256()
    expected = theirs.localize_key(
        auth, theirs.hash_passphrase(auth, b"lw-priv-secret"), OctetString(engine_id)
    )
    ours = priv_key(digest, password_to_key(digest, b"lw-priv-secret"), engine_id, 32)
    assert ours == bytes(expected)
    assert len(ours) == 32


@pytest.mark.parametrize("size", [24, 32])
@pytest.mark.parametrize(
    ("auth", "digest"),
    [(hlapi.USM_AUTH_HMAC96_MD5, "md5"), (hlapi.USM_AUTH_HMAC96_SHA, "sha1")],
)
def test_blumenthal_keys_are_extended_as_pysnmp_extends_them(
    auth: tuple[int, ...], digest: str, size: int
) -> None:
    engine_id = bytes.fromhex("80001f8880e9bd0c1d12667a5100000000")
    theirs = AesBlumenthal192() if size == 24 else AesBlumenthal256()
    expected = theirs.localize_key(
        auth, theirs.hash_passphrase(auth, b"lw-priv-secret"), OctetString(engine_id)
    )
    master = password_to_key(digest, b"lw-priv-secret")
    ours = priv_key(digest, master, engine_id, size, "blumenthal")
    assert ours == bytes(expected)
    assert ours != priv_key(digest, master, engine_id, size, "reeder")


def test_discovery_is_the_message_net_snmp_sends() -> None:
    # snmpget -d, with its msgID and request-id both replaced by ours (0x6cee4991).
    net_snmp = bytes.fromhex(
        "303e 020103 3011 02046cee4991 020300ffe3 040104 020103"
        " 0410 300e 0400 020100 020100 0400 0400 0400"
        " 3014 0400 0400 a00e 02046cee4991 020100 020100 3000"
    )
    assert encode_discovery(0x6CEE4991) == net_snmp


@functools.cache
def _session(password: str = V3_AUTH) -> Session:
    engine_id = bytes.fromhex("80001f8880e9bd0c1d12667a5100000000")
    auth = localise_key("sha1", password_to_key("sha1", password.encode()), engine_id)
    priv = priv_key("sha1", password_to_key("sha1", V3_PRIV.encode()), engine_id, 16)
    return Session.build(_user(), engine_id, auth, priv)


def _uptime_varbind(ticks: int) -> bytes:
    return tlv(SEQUENCE, tlv(OID, encode_oid(SYS_UPTIME)) + b"\x43\x02" + ticks.to_bytes(2, "big"))


def _agent_reply(session: Session, msg_id: int) -> bytes:
    """The authPriv Response an agent would send for sysUpTime, by our own encoder."""
    pdu = encode_pdu(RESPONSE, msg_id, [_uptime_varbind(12345)])
    return encode_message(session, 7, 12_345, msg_id, b"\x00\x01" * 4, pdu)


def _unprotected(session: Session, msg_id: int, pdu: bytes) -> bytes:
    """A noAuthNoPriv message as anyone on the path could forge it."""
    security = tlv(
        SEQUENCE,
        session.engine_field + b"\x02\x01\x07\x02\x01\x09" + session.user_field + b"\x04\x00" * 2,
    )
    head = tlv(SEQUENCE, integer(msg_id) + b"\x02\x03\x00\xff\xe3\x04\x01\x00\x02\x01\x03")
    scoped = tlv(SEQUENCE, session.engine_field + b"\x04\x00" + pdu)
    return tlv(SEQUENCE, b"\x02\x01\x03" + head + tlv(OCTETS, security) + scoped)


def test_a_reply_is_believed_only_with_its_digest_and_protection() -> None:
    session = _session()
    reply = _agent_reply(session, 99)
    decoded = decode_reply(session, 99, reply)
    assert not isinstance(decoded, Exception)
    assert decoded.response.varbinds == [(encode_oid(SYS_UPTIME), 12345)]
    assert (decoded.boots, decoded.engine_time, decoded.report) == (7, 12_345, None)
    # One flipped bit (here in the encrypted value), a key the agent would not have, an
    # answer to another request, a Response without authentication: none is believed.
    tampered = bytearray(reply)
    tampered[-1] ^= 0x01
    forged = _unprotected(session, 99, encode_pdu(RESPONSE, 99, [_uptime_varbind(1)]))
    for bad, session_used, request_id, reason in [
        (bytes(tampered), session, 99, "wrong digest"),
        (reply, _session("another-auth-key"), 99, "wrong digest"),
        (reply, session, 98, "another request"),
        (forged, session, 99, "not protected"),
    ]:
        with pytest.raises(ValueError, match=reason):
            decode_reply(session_used, request_id, bad)


def test_a_request_is_encrypted_and_carries_the_engine_time_it_is_given() -> None:
    session = _session()
    oid = encode_oid(SYS_UPTIME)
    request = encode_get(session, 7, 12_345, 42, bytes(8), [null_varbind(oid)])
    assert oid not in request  # the varbinds travel encrypted
    assert b"lwuser" in request
    assert b"\x02\x01\x07\x02\x02\x30\x39" in request  # boots 7, time 12345


def test_an_unauthenticated_report_is_taken_as_the_counter_it_names() -> None:
    session = _session()
    counter = tlv(SEQUENCE, tlv(OID, WRONG_DIGESTS) + b"\x41\x01\x03")
    decoded = decode_reply(session, 5, _unprotected(session, 5, encode_pdu(REPORT, 0, [counter])))
    assert not isinstance(decoded, Exception)
    assert (decoded.report, decoded.authenticated) == (WRONG_DIGESTS, False)


def _flip(data: bytes, at: int, bits: int) -> bytes:
    flipped = bytearray(data)
    flipped[at] ^= bits
    return bytes(flipped)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_malformed_datagram_is_dropped_never_a_crash(data: st.DataObject) -> None:
    # Anything can arrive on the socket: the decoders must say ValueError (dropped) and
    # nothing else, or the receive callback would fail with the request still waiting.
    session = _session()
    long_value = tlv(SEQUENCE, tlv(OID, encode_oid((*IF_OPER_STATUS, 1))) + tlv(OCTETS, bytes(200)))
    v2c = encode_pdu(RESPONSE, 99, [_uptime_varbind(1), long_value])  # in clear: fuzzed deep
    reply = data.draw(
        st.sampled_from([_agent_reply(session, 99), tlv(SEQUENCE, b"\x02\x01\x01\x04\x00" + v2c)])
    )
    datagram = data.draw(
        st.one_of(
            st.binary(max_size=200),
            st.integers(0, len(reply) - 1).map(lambda n: reply[:n]),
            st.tuples(st.integers(0, len(reply) - 1), st.integers(1, 255)).map(
                lambda at_bits: _flip(reply, *at_bits)
            ),
        )
    )
    for decode in (
        message_id,
        decode_discovery,
        decode_response,
        functools.partial(decode_reply, session, 99),
    ):
        with contextlib.suppress(ValueError):
            decode(datagram)
