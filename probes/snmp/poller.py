"""The SNMP poller: one shared engine, one GET per device poll, rates from counters.

Every SNMP probe names one interface on a device, and many links share a device. Each
`poll(spec)` joins the device's current *batch*: requests for the same device (same
address, credentials, timeout and retries) that arrive within `window_s` of the first
are answered by one GET carrying ``sysUpTime`` and, per interface, the seven IF-MIB
objects (split into several GETs only above `max_interfaces_per_request`, or when the
agent answers tooBig). Concurrency is bounded per device and globally.

Interfaces named by ifName, ifDescr or ifAlias are resolved by walking that column once
and caching it. Each poll also reads the naming column for the cached ifIndex, so an
ifIndex that moved (renumbering after a reboot, a re-used alias) is noticed at once: the
column is walked again and the interface read again, in the same probe run.

Counters become rates between consecutive polls of the same (device, ifIndex), over the
agent's own clock (sysUpTime, so our scheduling delays do not distort them). Counter64
and Counter32 wraps are unwrapped; an agent restart (sysUpTime went backwards, or
advanced far less than our clock) drops the previous counters, so no bogus rate follows.

GETs go through hand-written codecs that cost a fraction of pysnmp's CPU: SNMPv2c through
`probes.snmp.v2c`, SNMPv3 authPriv through `probes.snmp.v3` (USM with MD5, SHA-1 or
SHA-2 authentication and AES-128, -192 or -256 privacy). SNMPv3 with DES privacy, and the
walks, use pysnmp's asyncio engine, of which there is one per poller; `fast_v2c=False` and
`fast_v3=False` send those GETs through pysnmp too (for comparison). Target failures are
raised as `SnmpFailure` carrying the outcome (``down`` for no reply, ``unknown`` for what
is the monitor's problem: credentials, an interface that cannot be found, an agent error).
This module never writes to the network anything but SNMP requests to the configured
devices, and never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as hlapi
from pysnmp.proto import errind, rfc1902, rfc1905

from kernel.config import SnmpInterface, SnmpProbe
from kernel.domain import Outcome
from kernel.formatting import count_of
from probes.snmp.v2c import V2cClient
from probes.snmp.v3 import AUTH_PROTOCOLS, PRIV_PROTOCOLS, UsmError, UsmUser, V3Client
from probes.snmp.wire import (
    Missing,
    Response,
    SnmpTimeout,
    Value,
    encode_oid,
    enlarge_receive_buffer,
    null_varbind,
)

log = logging.getLogger(__name__)

Oid = tuple[int, ...]

SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
IF_DESCR: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
IF_SPEED: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 5)
IF_ADMIN_STATUS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
IF_OPER_STATUS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 8)
IF_IN_OCTETS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 10)
IF_IN_DISCARDS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 13)
IF_IN_ERRORS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 14)
IF_OUT_OCTETS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 16)
IF_OUT_DISCARDS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 19)
IF_OUT_ERRORS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 20)
IF_NAME: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)
IF_HC_IN_OCTETS: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6)
IF_HC_OUT_OCTETS: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10)
IF_HIGH_SPEED: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 15)
IF_ALIAS: Oid = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18)

NAME_COLUMNS: Mapping[str, Oid] = {"descr": IF_DESCR, "name": IF_NAME, "alias": IF_ALIAS}

# (metric, column, counter modulus, octets?): the rate is delta / seconds, x 8 for octets.
# Octets come from the 64-bit ifXTable counters where the interface has them, else from
# ifTable's 32-bit ones (many older ports and whole devices have only those).
_COUNTERS: tuple[tuple[str, Oid, int, bool], ...] = (
    ("in_bps", IF_HC_IN_OCTETS, 1 << 64, True),
    ("out_bps", IF_HC_OUT_OCTETS, 1 << 64, True),
    ("in_bps", IF_IN_OCTETS, 1 << 32, True),
    ("out_bps", IF_OUT_OCTETS, 1 << 32, True),
    ("in_errors_per_s", IF_IN_ERRORS, 1 << 32, False),
    ("out_errors_per_s", IF_OUT_ERRORS, 1 << 32, False),
    ("in_discards_per_s", IF_IN_DISCARDS, 1 << 32, False),
    ("out_discards_per_s", IF_OUT_DISCARDS, 1 << 32, False),
)
_WIDE = (IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS, IF_HIGH_SPEED)  # read where ifXTable has them
_NARROW = (IF_IN_OCTETS, IF_OUT_OCTETS)  # read where it has not
_ALWAYS = (
    IF_OPER_STATUS,
    IF_ADMIN_STATUS,
    IF_SPEED,
    IF_IN_ERRORS,
    IF_OUT_ERRORS,
    IF_IN_DISCARDS,
    IF_OUT_DISCARDS,
)
INTERFACE_COLUMNS: tuple[Oid, ...] = (*_ALWAYS, *_WIDE)  # an interface with 64-bit counters
_SATURATED = (1 << 32) - 1  # ifSpeed of an interface faster than 4.29 Gbit/s
# The smallest Ethernet frame takes 84 octets on the wire (with preamble and gap): no
# interface counts more errors or discards per second than that many frames fill.
_MIN_FRAME_BITS = 84 * 8
_SLACK = 1.5  # agents' counters and sysUpTime are not sampled at one instant
_FROZEN_AFTER_S = 5.0  # sysUpTime unchanged over this much of our time: it stands still

_TICKS = 1 << 32  # TimeTicks wrap after 497 days
_ERROR_STATUS = {
    1: "tooBig",
    2: "noSuchName",
    3: "badValue",
    4: "readOnly",
    5: "genErr",
    6: "noAccess",
    16: "authorizationError",
}
_AUTH_PROBLEMS = (
    errind.WrongDigest,
    errind.UnknownUserName,
    errind.AuthenticationFailure,
    errind.AuthenticationError,
    errind.DecryptionError,
    errind.UnsupportedSecurityLevel,
    errind.UnknownSecurityName,
    errind.UnknownEngineID,
    errind.NotInTimeWindow,
)
_AUTH_PROTOCOLS = {
    "md5": hlapi.USM_AUTH_HMAC96_MD5,
    "sha": hlapi.USM_AUTH_HMAC96_SHA,
    "sha224": hlapi.USM_AUTH_HMAC128_SHA224,
    "sha256": hlapi.USM_AUTH_HMAC192_SHA256,
    "sha384": hlapi.USM_AUTH_HMAC256_SHA384,
    "sha512": hlapi.USM_AUTH_HMAC384_SHA512,
}
_PRIV_PROTOCOLS = {  # pysnmp's plain AES-192/256 names are Reeder's (see probes.snmp.v3)
    "des": hlapi.USM_PRIV_CBC56_DES,
    "aes": hlapi.USM_PRIV_CFB128_AES,
    "aes192": hlapi.USM_PRIV_CFB192_AES,
    "aes192c": hlapi.USM_PRIV_CFB192_AES,
    "aes192-blumenthal": hlapi.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "aes256": hlapi.USM_PRIV_CFB256_AES,
    "aes256c": hlapi.USM_PRIV_CFB256_AES,
    "aes256-blumenthal": hlapi.USM_PRIV_CFB256_AES_BLUMENTHAL,
}


class SnmpFailure(Exception):
    """A poll that measured no interface state; `outcome` says whose problem it is."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """Requests with equal keys may share a GET."""

    host: str
    port: int
    version: str
    community: str | None
    user: str | None
    auth_protocol: str
    auth_key: str | None
    priv_protocol: str
    priv_key: str | None
    timeout_s: float
    retries: int

    @classmethod
    def from_spec(cls, spec: SnmpProbe) -> DeviceKey:
        host = spec.host
        if host.startswith("["):
            host = host[1 : host.index("]")]
        elif host.count(":") == 1:
            host = host.split(":")[0]
        return cls(
            host=host,
            port=spec.port,
            version=spec.version,
            community=spec.community,
            user=spec.user,
            auth_protocol=spec.auth_protocol,
            auth_key=spec.auth_key,
            priv_protocol=spec.priv_protocol,
            priv_key=spec.priv_key,
            timeout_s=spec.timeout.total_seconds(),
            retries=spec.retries,
        )

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


Ref = tuple[str, int | str]
"""How a probe names its interface: ("index", 3), ("alias", "CID-1001"), ..."""


def interface_ref(interface: SnmpInterface | None) -> Ref | None:
    if interface is None:
        return None
    if interface.index is not None:
        return ("index", interface.index)
    for kind in ("name", "descr", "alias"):
        value = getattr(interface, kind)
        if value is not None:
            return (kind, value)
    raise ValueError("SnmpInterface names no interface")  # config validation prevents it


def describe_ref(ref: Ref) -> str:
    return f"ifIndex {ref[1]}" if ref[0] == "index" else f"if{ref[0].capitalize()} {ref[1]!r}"


@dataclass(frozen=True, slots=True)
class Reading:
    """One poll's answer for one probe."""

    device: str
    round_trip_ms: float  # of the GET that carried this interface
    uptime_s: float | None  # the agent's sysUpTime
    if_index: int | None = None  # None: the probe names no interface
    oper_status: int | None = None  # IF-MIB ifOperStatus: 1 up, 2 down, ... 7 lowerLayerDown
    admin_status: int | None = None  # 1 up, 2 down, 3 testing
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class _Snapshot:
    ticks: int | None
    at: float  # monotonic seconds when the reply arrived
    counters: dict[Oid, int]


@dataclass(slots=True)
class _Names:
    fetched_at: float
    indexes: dict[str, list[int]]  # name -> ifIndexes carrying it
    count: int


@dataclass(slots=True)
class _Device:
    key: DeviceKey
    slots: asyncio.Semaphore
    max_interfaces: int
    address: tuple[Any, ...] | None = None
    waiting: list[tuple[Ref | None, asyncio.Future[Reading]]] = field(default_factory=list)
    flush: asyncio.TimerHandle | None = None
    names: dict[str, _Names] = field(default_factory=dict)
    walking: dict[str, asyncio.Lock] = field(default_factory=dict)
    counters: dict[int, _Snapshot] = field(default_factory=dict)
    uptime: tuple[int, float] | None = None  # last (sysUpTime ticks, monotonic)
    uptime_frozen: bool = False  # sysUpTime stood still between polls
    wide: dict[int, bool] = field(default_factory=dict)  # ifIndex -> has 64-bit octets
    pysnmp: tuple[Any, Any] | None = None  # (auth data, transport target)
    pysnmp_targets: dict[int, Any] = field(default_factory=dict)  # retries -> target
    usm: UsmUser | None = None  # the fast v3 path's user, when it serves this device


@dataclass(slots=True)
class _Get:
    """One GET's answer, keyed by the OID's BER content bytes."""

    error_status: int
    error_index: int
    values: dict[bytes, Value]
    round_trip_ms: float
    received_at: float


@functools.lru_cache(maxsize=1 << 16)
def _encoded(oid: Oid) -> tuple[bytes, bytes]:
    """(OID content bytes, request varbind) — cached, an interface's OIDs recur each poll."""
    content = encode_oid(oid)
    return content, null_varbind(content)


class SnmpPoller:
    """Shared by every SNMP probe of a process (it lives on the ProbeContext)."""

    def __init__(
        self,
        *,
        window_s: float = 0.03,
        max_in_flight: int = 128,
        per_device_in_flight: int = 2,
        max_interfaces_per_request: int = 16,
        names_ttl_s: float = 3600.0,
        fast_v2c: bool = True,
        fast_v3: bool = True,
    ) -> None:
        self._window_s = window_s
        self._max_in_flight = max_in_flight
        self._per_device = per_device_in_flight
        self._max_interfaces = max_interfaces_per_request
        self._names_ttl_s = names_ttl_s
        self._fast_v2c = fast_v2c
        self._fast_v3 = fast_v3
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reset()
        # Counted for the benchmark and the logs; never reset.
        self.requests = 0
        self.pysnmp_gets = 0  # of those requests, the GETs that went through pysnmp
        self.walks = 0

    def _reset(self) -> None:
        self._devices: dict[DeviceKey, _Device] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None
        self._v2c: V2cClient | None = None
        self._v3: V3Client | None = None
        # One pysnmp engine, "" below, serves everything, except that pysnmp keeps one
        # USM entry per user name: the same user name with other keys (per-device
        # passwords) gets an engine of its own, keyed by those credentials.
        self._engines: dict[str, Any] = {}
        self._usm_owner: dict[str, tuple[str, ...]] = {}  # user name -> credentials on ""
        self._engine_lock: asyncio.Lock | None = None
        self._buffers_enlarged: set[int] = set()

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (another asyncio.run): sockets and futures of the old one
            # are unusable, so start afresh. Counters for rates are lost with them.
            self._reset()
            self._loop = loop
            self._slots = asyncio.Semaphore(self._max_in_flight)
            self._engine_lock = asyncio.Lock()
        return loop

    async def close(self) -> None:
        """Cancel batches in flight and close the sockets."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in (self._v2c, self._v3):
            if client is not None:
                client.close()
        for engine in self._engines.values():
            engine.close_dispatcher()
        self._reset()
        self._loop = None

    # -- the probe's entry point ---------------------------------------------------------

    async def poll(self, spec: SnmpProbe) -> Reading:
        """The state of the probe's interface; raises SnmpFailure when not measured."""
        loop = self._bind()
        key = DeviceKey.from_spec(spec)
        device = self._devices.get(key)
        if device is None:
            device = _Device(key, asyncio.Semaphore(self._per_device), self._max_interfaces)
            self._devices[key] = device
        future: asyncio.Future[Reading] = loop.create_future()
        device.waiting.append((interface_ref(spec.interface), future))
        if len(device.waiting) >= device.max_interfaces * self._per_device:
            self._start(device)  # a full batch gains nothing by waiting
        elif device.flush is None:
            device.flush = loop.call_later(self._window_s, self._start, device)
        return await future

    def _start(self, device: _Device) -> None:
        if device.flush is not None:
            device.flush.cancel()
            device.flush = None
        batch, device.waiting = device.waiting, []
        if not batch:
            return
        task = asyncio.create_task(self._serve(device, batch), name=f"snmp-poll:{device.key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(
        self, device: _Device, batch: list[tuple[Ref | None, asyncio.Future[Reading]]]
    ) -> None:
        try:
            answers = await self._answer(device, {ref for ref, _ in batch})
        except SnmpFailure as failure:
            answers = dict.fromkeys((ref for ref, _ in batch), failure)
        except Exception as exc:  # a bug: hand it to every caller, where it propagates
            log.exception("snmp poll failed device=%s", device.key)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for ref, future in batch:
            if future.done():  # the caller gave up (its deadline passed)
                continue
            answer = answers[ref]
            if isinstance(answer, SnmpFailure):
                future.set_exception(answer)
            else:
                future.set_result(answer)

    # -- one batch -----------------------------------------------------------------------

    async def _answer(
        self, device: _Device, refs: set[Ref | None]
    ) -> dict[Ref | None, Reading | SnmpFailure]:
        await self._resolve_address(device)
        answers: dict[Ref | None, Reading | SnmpFailure] = {}
        wanted: dict[Ref | None, int | None] = {}
        for ref, found in (await self._locate(device, refs, fresh=False)).items():
            if isinstance(found, SnmpFailure):
                answers[ref] = found
            else:
                wanted[ref] = found
        read, moved = await self._read(device, wanted)
        answers.update(read)
        if moved:
            # The cached ifIndex no longer carries that name: walk again, read again.
            log.info(
                "snmp interface moved, resolving again device=%s interfaces=%s",
                device.key,
                ",".join(describe_ref(ref) for ref in moved),
            )
            wanted = {}
            for ref, found in (await self._locate(device, moved, fresh=True)).items():
                if isinstance(found, SnmpFailure):
                    answers[ref] = found
                else:
                    wanted[ref] = found
            read, still_moving = await self._read(device, wanted)
            answers.update(read)
            for ref in still_moving:
                answers[ref] = SnmpFailure(
                    Outcome.UNKNOWN,
                    f"{describe_ref(ref)} keeps moving between ifIndexes on {device.key}",
                )
        return answers

    async def _locate(
        self, device: _Device, refs: set[Ref | None] | set[Ref], *, fresh: bool
    ) -> dict[Ref | None, int | SnmpFailure | None]:
        located: dict[Ref | None, int | SnmpFailure | None] = {}
        for ref in refs:
            if ref is None or ref[0] == "index":
                located[ref] = None if ref is None else int(ref[1])
                continue
            kind, name = ref
            names = await self._names(device, kind, fresh=fresh)
            matches = names.indexes.get(str(name), [])
            if len(matches) == 1:
                located[ref] = matches[0]
            elif not matches:
                located[ref] = SnmpFailure(
                    Outcome.UNKNOWN,
                    f"no interface with {describe_ref(ref)} on {device.key} "
                    f"({count_of(names.count, 'interface')})",
                )
            else:
                located[ref] = SnmpFailure(
                    Outcome.UNKNOWN,
                    f"{describe_ref(ref)} is ambiguous on {device.key}: ifIndex "
                    f"{', '.join(map(str, matches))}; name the interface by index",
                )
        return located

    async def _names(self, device: _Device, kind: str, *, fresh: bool) -> _Names:
        lock = device.walking.setdefault(kind, asyncio.Lock())
        asked_at = time.monotonic()
        async with lock:
            names = device.names.get(kind)
            # A walk that finished after we asked is as fresh as one we would start now.
            usable = names is not None and (
                names.fetched_at >= asked_at
                or (not fresh and asked_at - names.fetched_at < self._names_ttl_s)
            )
            if names is not None and usable:
                return names
            rows = await self._walk(device, NAME_COLUMNS[kind])
            indexes: dict[str, list[int]] = {}
            for if_index, value in rows.items():
                indexes.setdefault(_text(value), []).append(if_index)
            names = _Names(time.monotonic(), indexes, len(rows))
            device.names[kind] = names
            log.debug("snmp names walked device=%s column=%s rows=%d", device.key, kind, len(rows))
            return names

    async def _read(
        self, device: _Device, wanted: Mapping[Ref | None, int | None]
    ) -> tuple[dict[Ref | None, Reading | SnmpFailure], set[Ref]]:
        """Read every wanted interface (one GET per chunk); also which refs moved."""
        if not wanted:
            return {}, set()
        indexes = sorted({i for i in wanted.values() if i is not None})
        # The naming column of each name-resolved interface rides along, to see moves.
        checks: dict[int, set[str]] = {}
        for ref, if_index in wanted.items():
            if ref is not None and if_index is not None and ref[0] != "index":
                checks.setdefault(if_index, set()).add(ref[0])
        size = device.max_interfaces
        chunks = [indexes[i : i + size] for i in range(0, len(indexes), size)] or [[]]
        outcomes = await asyncio.gather(
            *(self._read_chunk(device, chunk, checks) for chunk in chunks),
            return_exceptions=True,
        )
        by_index: dict[int, _Interface | SnmpFailure] = {}
        plain: Reading | SnmpFailure | None = None
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, SnmpFailure):
                by_index.update(dict.fromkeys(chunk, outcome))
                plain = plain or outcome
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                by_index.update(outcome[0])
                if not isinstance(plain, Reading):
                    plain = outcome[1]
        assert plain is not None
        results: dict[Ref | None, Reading | SnmpFailure] = {}
        moved: set[Ref] = set()
        for ref, if_index in wanted.items():
            if ref is None or if_index is None:
                results[ref] = plain
                continue
            found = by_index[if_index]
            if isinstance(found, SnmpFailure):
                results[ref] = found
            elif found.reading is None:  # noSuchInstance: no such ifIndex (any more)
                if ref[0] == "index":
                    results[ref] = SnmpFailure(
                        Outcome.UNKNOWN, f"no interface with ifIndex {if_index} on {device.key}"
                    )
                elif found.names.get(ref[0]) == str(ref[1]):
                    # Still named so in ifXTable, only ifTable lacks the row: walking
                    # again would find the same ifIndex, poll after poll.
                    results[ref] = SnmpFailure(
                        Outcome.UNKNOWN,
                        f"{describe_ref(ref)} is ifIndex {if_index} in ifXTable, but "
                        f"ifTable has no such row on {device.key}: the agent gives no "
                        "status for it",
                    )
                else:
                    moved.add(ref)
            elif ref[0] != "index" and found.names.get(ref[0], str(ref[1])) != str(ref[1]):
                # (A naming column the agent failed to read is taken as unchanged.)
                moved.add(ref)
            else:
                results[ref] = found.reading
        return results, moved

    async def _read_chunk(
        self, device: _Device, chunk: list[int], checks: Mapping[int, set[str]]
    ) -> tuple[dict[int, _Interface | SnmpFailure], Reading]:
        oids: list[Oid] = [SYS_UPTIME]
        for if_index in chunk:
            wide = device.wide.get(if_index)
            columns = (*_ALWAYS, *(_WIDE if wide is not False else ()), *(() if wide else _NARROW))
            oids += [(*column, if_index) for column in columns]
            oids += [(*NAME_COLUMNS[kind], if_index) for kind in sorted(checks.get(if_index, ()))]
        got = await self._get(device, oids)
        if got.error_status == 1 and len(chunk) > 1:
            # tooBig: this agent takes fewer varbinds; remember it and split the chunk.
            device.max_interfaces = max(1, len(chunk) // 2)
            log.warning(
                "snmp agent answered tooBig, splitting requests device=%s interfaces=%d",
                device.key,
                device.max_interfaces,
            )
            halves = await asyncio.gather(
                self._read_chunk(device, chunk[: len(chunk) // 2], checks),
                self._read_chunk(device, chunk[len(chunk) // 2 :], checks),
            )
            return {**halves[0][0], **halves[1][0]}, halves[0][1]
        failed: dict[bytes, str] = {}  # OID content -> the error the agent gave for it
        while got.error_status:
            status = _ERROR_STATUS.get(got.error_status, str(got.error_status))
            if not 1 <= got.error_index <= len(oids):
                if len(chunk) > 1:  # it names no culprit: ask about the halves apart
                    halves = await asyncio.gather(
                        self._read_chunk(device, chunk[: len(chunk) // 2], checks),
                        self._read_chunk(device, chunk[len(chunk) // 2 :], checks),
                    )
                    return {**halves[0][0], **halves[1][0]}, halves[0][1]
                raise SnmpFailure(
                    Outcome.UNKNOWN,
                    f"agent {device.key} answered {status} (varbind {got.error_index})",
                )
            # One varbind the agent cannot read (genErr on a counter, noAccess) fails the
            # whole PDU: ask again without it, as net-snmp's snmpget does, so that no
            # interface depends on another's counter. Each round drops one varbind.
            culprit = oids.pop(got.error_index - 1)
            failed[_encoded(culprit)[0]] = status
            log.debug(
                "snmp varbind failed, asking without it device=%s oid=%s error=%s",
                device.key,
                _dotted(culprit),
                status,
            )
            if not oids:
                got = _Get(0, 0, {}, got.round_trip_ms, got.received_at)
                break
            got = await self._get(device, oids)
        uptime = got.values.get(_encoded(SYS_UPTIME)[0])
        ticks = self._note_uptime(device, uptime if isinstance(uptime, int) else None, got)
        plain = Reading(
            device=str(device.key),
            round_trip_ms=got.round_trip_ms,
            uptime_s=uptime / 100.0 if isinstance(uptime, int) else None,
        )
        found = {
            if_index: self._interface(device, if_index, got, ticks, checks, plain, failed)
            for if_index in chunk
        }
        return found, plain

    def _interface(
        self,
        device: _Device,
        if_index: int,
        got: _Get,
        ticks: int | None,
        checks: Mapping[int, set[str]],
        plain: Reading,
        failed: Mapping[bytes, str],
    ) -> _Interface | SnmpFailure:
        def value(column: Oid) -> Value:
            return got.values.get(_encoded((*column, if_index))[0])

        names = {
            kind: _text(value(NAME_COLUMNS[kind]))
            for kind in checks.get(if_index, ())
            if _encoded((*NAME_COLUMNS[kind], if_index))[0] not in failed
        }
        oper, admin = value(IF_OPER_STATUS), value(IF_ADMIN_STATUS)
        error = failed.get(_encoded((*IF_OPER_STATUS, if_index))[0])
        if error is not None:
            return SnmpFailure(
                Outcome.UNKNOWN,
                f"agent {device.key} answered {error} for ifOperStatus of ifIndex {if_index}",
            )
        if oper is Missing.NO_SUCH_INSTANCE or oper is Missing.END_OF_MIB_VIEW:
            device.counters.pop(if_index, None)
            device.wide.pop(if_index, None)
            return _Interface(None, names)
        if not isinstance(oper, int):
            return SnmpFailure(
                Outcome.UNKNOWN,
                f"agent {device.key} gives no ifOperStatus for ifIndex {if_index} "
                f"({_show(oper)}); does it implement IF-MIB, and may this community or "
                "user read it?",
            )
        hc_in = value(IF_HC_IN_OCTETS)
        if isinstance(hc_in, int):
            device.wide[if_index] = True
        elif isinstance(hc_in, Missing):  # asked, and the agent has no such counter
            device.wide[if_index] = False
        counters = {c: v for _, c, _, _ in _COUNTERS if isinstance(v := value(c), int)}
        current = _Snapshot(ticks, got.received_at, counters)
        previous = device.counters.get(if_index)
        speed_bps = _speed_bps(value(IF_SPEED), value(IF_HIGH_SPEED))
        metrics = _rates(previous, current, speed_bps)
        if previous is None or _elapsed(previous, current) > 0:
            # Two polls inside one clock tick: keep the older snapshot for the next rate.
            device.counters[if_index] = current
        metrics["if_index"] = float(if_index)
        if speed_bps is not None:
            metrics["speed_bps"] = speed_bps
        reading = Reading(
            device=plain.device,
            round_trip_ms=plain.round_trip_ms,
            uptime_s=plain.uptime_s,
            if_index=if_index,
            oper_status=oper,
            admin_status=admin if isinstance(admin, int) else None,
            metrics=metrics,
        )
        return _Interface(reading, names)

    def _note_uptime(self, device: _Device, ticks: int | None, got: _Get) -> int | None:
        """Forget counters (and cached names) when the agent restarted since last time.

        Returns the ticks to take rates over: None while sysUpTime stands still (some
        agents' does), when our own clock serves instead.
        """
        if ticks is None:
            return None
        now = got.received_at
        previous = device.uptime
        if previous is not None and ticks == previous[0]:
            if now - previous[1] < _FROZEN_AFTER_S:
                return ticks  # two polls inside one tick
            if not device.uptime_frozen:
                device.uptime_frozen = True
                log.warning(
                    "snmp agent's sysUpTime stands still, rates use our clock device=%s "
                    "uptime_s=%.2f",
                    device.key,
                    ticks / 100.0,
                )
            return None  # and keep when it was first seen, to tell it moving again
        device.uptime = (ticks, now)
        if device.uptime_frozen:
            device.uptime_frozen = False
            log.info("snmp agent's sysUpTime moves again device=%s", device.key)
            return ticks
        if previous is None:
            return ticks
        old_ticks, old_at = previous
        local_s = now - old_at
        agent_s = ((ticks - old_ticks) % _TICKS) / 100.0
        slack_s = max(5.0, 0.2 * local_s)
        wrapped = ticks < old_ticks
        # Backwards is a restart unless it is the 497-day wrap (agent time then still
        # matches ours); forwards but far slower than our clock is a restart since the
        # last poll that has been up less time than passed.
        restarted = (wrapped and abs(agent_s - local_s) > slack_s) or (
            not wrapped and agent_s < local_s - slack_s
        )
        if restarted:
            log.info(
                "snmp agent restarted, counters reset device=%s uptime_s=%.2f was_s=%.2f",
                device.key,
                ticks / 100.0,
                old_ticks / 100.0,
            )
            device.counters.clear()
            device.names.clear()  # ifIndexes may have been renumbered
        return ticks

    # -- the wire ------------------------------------------------------------------------

    async def _resolve_address(self, device: _Device) -> None:
        if device.address is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(device.key.host, device.key.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise SnmpFailure(
                Outcome.DOWN, f"dns: cannot resolve {device.key.host} ({exc.strerror or exc})"
            ) from None
        device.address = infos[0][4]

    async def _get(self, device: _Device, oids: Sequence[Oid]) -> _Get:
        assert self._slots is not None
        key = device.key
        async with device.slots, self._slots:
            self.requests += 1
            started = time.monotonic()
            try:
                response = await self._fast_get(device, oids)
            except SnmpTimeout:
                raise _timeout(key) from None
            except UsmError as exc:
                raise _usm_failure(key, exc.problem, exc.check) from None
            if response is None:
                error_status, error_index, values = await self._pysnmp_get(device, oids)
            else:
                error_status, error_index = response.error_status, response.error_index
                values = dict(response.varbinds)
            received_at = time.monotonic()
        return _Get(
            error_status, error_index, values, (received_at - started) * 1000.0, received_at
        )

    async def _fast_get(self, device: _Device, oids: Sequence[Oid]) -> Response | None:
        """The GET through our own codecs; None where they do not serve the device."""
        key = device.key
        assert device.address is not None
        if key.version == "2c" and self._fast_v2c:
            assert key.community is not None
            if self._v2c is None:
                self._v2c = V2cClient()
            return await self._v2c.get(
                device.address,
                key.community.encode(),
                [_encoded(oid)[1] for oid in oids],
                timeout_s=key.timeout_s,
                retries=key.retries,
            )
        if key.version == "3" and self._fast_v3 and _fast_v3_serves(key):
            if device.usm is None:
                # Config validation: version 3 has all three.
                assert key.user is not None
                assert key.auth_key is not None
                assert key.priv_key is not None
                device.usm = UsmUser(
                    key.user, key.auth_protocol, key.auth_key, key.priv_protocol, key.priv_key
                )
            if self._v3 is None:
                self._v3 = V3Client()
            return await self._v3.get(
                device.address,
                device.usm,
                [_encoded(oid)[1] for oid in oids],
                timeout_s=key.timeout_s,
                retries=key.retries,
            )
        return None

    async def _pysnmp_session(self, device: _Device) -> tuple[Any, Any, Any]:
        """(engine, auth data, transport target) for pysnmp requests to `device`."""
        assert self._engine_lock is not None
        key = device.key
        name = ""
        if key.version == "3":
            assert key.user is not None
            credentials = (
                key.auth_protocol,
                key.auth_key or "",
                key.priv_protocol,
                key.priv_key or "",
            )
            owner = self._usm_owner.setdefault(key.user, credentials)
            if owner != credentials:
                name = "\x00".join((key.user, *credentials))
        engine = self._engines.get(name)
        if engine is None:
            async with self._engine_lock:
                engine = self._engines.get(name)
                if engine is None:
                    if name:
                        log.info(
                            "snmp user name with other keys, separate engine user=%s device=%s",
                            key.user,
                            key,
                        )
                    # Building an engine loads pysnmp's MIB modules from disk.
                    engine = await asyncio.to_thread(hlapi.SnmpEngine)
                    self._engines[name] = engine
        if device.pysnmp is None:
            assert device.address is not None
            if key.version == "2c":
                auth: Any = hlapi.CommunityData(key.community, mpModel=1)  # noqa: S508
            else:
                auth = hlapi.UsmUserData(
                    key.user,
                    authKey=key.auth_key,
                    privKey=key.priv_key,
                    authProtocol=_AUTH_PROTOCOLS[key.auth_protocol],
                    privProtocol=_PRIV_PROTOCOLS[key.priv_protocol],
                )
            target_class = (
                hlapi.Udp6TransportTarget if ":" in device.address[0] else hlapi.UdpTransportTarget
            )
            target = await target_class.create(
                device.address[:2], timeout=key.timeout_s, retries=key.retries
            )
            device.pysnmp = (auth, target)
        return engine, device.pysnmp[0], device.pysnmp[1]

    def _enlarge_engine_buffer(self, engine: Any) -> None:
        if id(engine) in self._buffers_enlarged or engine.transport_dispatcher is None:
            return
        for target_class in (hlapi.UdpTransportTarget, hlapi.Udp6TransportTarget):
            try:
                transport = engine.transport_dispatcher.get_transport(target_class.TRANSPORT_DOMAIN)
            except PySnmpError:  # that address family is not in use
                continue
            extra = getattr(getattr(transport, "transport", None), "get_extra_info", None)
            sock = extra("socket") if extra is not None else None
            if sock is not None:
                enlarge_receive_buffer(sock)
                self._buffers_enlarged.add(id(engine))

    async def _pysnmp_get(
        self, device: _Device, oids: Sequence[Oid]
    ) -> tuple[int, int, dict[bytes, Value]]:
        engine, auth, target = await self._pysnmp_session(device)
        key = device.key
        split = key.version == "3" and key.retries > 0 and _holds_engine(engine, target)
        if split:
            # The first try alone: unanswered, it may be a changed engine ID that pysnmp
            # would keep sending to. A discovery tells, and the rest of the tries follow.
            target = await self._pysnmp_target(device, retries=0)
        for attempt in range(2):
            self.pysnmp_gets += 1
            try:
                indication, status, index, varbinds = await hlapi.get_cmd(
                    engine,
                    auth,
                    target,
                    hlapi.ContextData(),
                    *(hlapi.ObjectType(hlapi.ObjectIdentity(oid)) for oid in oids),
                    lookupMib=False,
                )
            except PySnmpError as exc:
                raise SnmpFailure(Outcome.UNKNOWN, f"snmp: {exc}") from None
            self._enlarge_engine_buffer(engine)
            if not indication:
                break
            if attempt == 0 and split and isinstance(indication, errind.RequestTimedOut):
                target = await self._pysnmp_target(device, retries=key.retries - 1)
                await self._check_pysnmp_engine(engine, target, device, retries=key.retries - 1)
                continue
            if attempt or not self._pysnmp_rediscover(engine, device, indication):
                raise _indication_failure(device.key, indication)
            target = await self._pysnmp_target(device, retries=key.retries)
        values = {encode_oid(tuple(name)): _from_pysnmp(value) for name, value in varbinds}
        return int(status), int(index), values

    async def _pysnmp_target(self, device: _Device, *, retries: int) -> Any:
        """The device's pysnmp transport target with `retries` (fewer than configured)."""
        target = device.pysnmp_targets.get(retries)
        if target is None:
            assert device.address is not None
            target_class = (
                hlapi.Udp6TransportTarget if ":" in device.address[0] else hlapi.UdpTransportTarget
            )
            target = await target_class.create(
                device.address[:2], timeout=device.key.timeout_s, retries=retries
            )
            device.pysnmp_targets[retries] = target
        return target

    def _pysnmp_rediscover(self, engine: Any, device: _Device, indication: Any) -> bool:
        """After a USM report or a timeout, make pysnmp learn the agent's engine ID again.

        pysnmp keeps the engine ID it discovered per address for minutes and, when the
        device's engine ID changed, keeps sending to the old one: net-snmp's report goes
        unheeded (the request times out) and a pysnmp agent's usmStatsUnknownUserNames is
        final. True when the request is worth resending now (a report came back at once);
        after a timeout the next request rediscovers, within its own time.
        """
        timed_out = isinstance(indication, errind.RequestTimedOut)
        if device.key.version != "3" or not (timed_out or isinstance(indication, _AUTH_PROBLEMS)):
            return False
        assert device.address is not None
        if not _forget_peer_engine(engine, device.address):
            return False  # it was a discovery that failed: nothing learnt to forget
        log.info(
            "snmp v3 engine to be discovered again device=%s reason=%s",
            device.key,
            "timeout" if timed_out else indication,
        )
        return not timed_out

    async def _check_pysnmp_engine(
        self, engine: Any, target: Any, device: _Device, *, retries: int | None = None
    ) -> None:
        """Is the engine ID pysnmp holds for a v3 agent still the agent's own?

        Asked before a walk (which comes after a long pause, or after the agent restarted,
        when a changed engine ID is likeliest) and when a GET's first try went unanswered:
        pysnmp would only time out on a stale one. One discovery through our codec (a
        small unauthenticated exchange) tells; `retries` bounds it to the time left.
        """
        if device.key.version != "3":
            return
        held = _holds_engine(engine, target)
        if held is None:
            return  # pysnmp discovers it itself
        assert device.address is not None
        if self._v3 is None:
            self._v3 = V3Client()
        key = device.key
        try:
            current = await self._v3.discover(
                device.address,
                timeout_s=key.timeout_s,
                retries=key.retries if retries is None else retries,
            )
        except SnmpTimeout:
            raise _timeout(key) from None
        if held != current and _forget_peer_engine(engine, device.address):
            log.info(
                "snmp v3 engine discovered again device=%s reason=engine-id engine_id=%s was=%s",
                key,
                current.hex(),
                held.hex(),
            )

    async def _walk(self, device: _Device, column: Oid) -> dict[int, Value]:
        """ifIndex -> value of one IF-MIB column, by GETBULK."""
        assert self._slots is not None
        engine, auth, target = await self._pysnmp_session(device)
        rows: dict[int, Value] = {}
        async with device.slots, self._slots:
            self.walks += 1
            await self._check_pysnmp_engine(engine, target, device)
            for attempt in range(2):
                try:
                    rows = await self._walk_once(engine, auth, target, device, column)
                    break
                except _WalkIndication as failed:
                    if attempt or not self._pysnmp_rediscover(engine, device, failed.indication):
                        raise _indication_failure(device.key, failed.indication) from None
        self._enlarge_engine_buffer(engine)
        return rows

    async def _walk_once(
        self, engine: Any, auth: Any, target: Any, device: _Device, column: Oid
    ) -> dict[int, Value]:
        rows: dict[int, Value] = {}
        try:
            async for indication, status, _index, varbinds in hlapi.bulk_walk_cmd(
                engine,
                auth,
                target,
                hlapi.ContextData(),
                0,
                50,
                hlapi.ObjectType(hlapi.ObjectIdentity(column)),
                lookupMib=False,
                lexicographicMode=False,
            ):
                if indication:
                    raise _WalkIndication(indication)
                if status:
                    status_name = _ERROR_STATUS.get(int(status), str(status))
                    raise SnmpFailure(
                        Outcome.UNKNOWN,
                        f"agent {device.key} answered {status_name} walking {_dotted(column)}",
                    )
                for name, value in varbinds:
                    oid = tuple(name)
                    if oid[: len(column)] == column and len(oid) == len(column) + 1:
                        rows[oid[-1]] = _from_pysnmp(value)
        except PySnmpError as exc:
            raise SnmpFailure(Outcome.UNKNOWN, f"snmp: {exc}") from None
        return rows


class _WalkIndication(Exception):
    def __init__(self, indication: Any) -> None:
        super().__init__(str(indication))
        self.indication = indication


def _holds_engine(engine: Any, target: Any) -> bytes | None:
    """The engine ID pysnmp has discovered for a target's agent, if any."""
    model = engine.message_processing_subsystems.get(3)
    held = model.get_peer_engine_info(*target.get_transport_info())[0]
    return None if held is None else bytes(held)


def _forget_peer_engine(engine: Any, address: tuple[Any, ...]) -> bool:
    """Drop pysnmp's cached engine ID for `address`; True if there was one.

    pysnmp offers no call for it: its SNMPv3 message processing keeps the cache (and an
    expiry queue naming the same keys) in private attributes.
    """
    model = engine.message_processing_subsystems.get(3)
    prefix = "_SnmpV3MessageProcessingModel__"
    cache = getattr(model, prefix + "engineIdCache", None)
    expiring = getattr(model, prefix + "engineIdCacheExpQueue", None)
    if not isinstance(cache, dict) or not isinstance(expiring, dict):
        log.warning("snmp cannot reset pysnmp's engine ID cache (pysnmp version changed?)")
        return False
    keys = [k for k in cache if tuple(k[1])[:2] == tuple(address[:2])]
    for k in keys:
        del cache[k]
        for queued in expiring.values():
            while k in queued:  # pysnmp would delete it again, and fail, when it expires
                queued.remove(k)
    return bool(keys)


@dataclass(frozen=True, slots=True)
class _Interface:
    reading: Reading | None  # None: noSuchInstance, the ifIndex does not exist
    names: dict[str, str]  # naming columns read along, to notice an ifIndex that moved


def _rates(
    previous: _Snapshot | None, current: _Snapshot, speed_bps: float | None = None
) -> dict[str, float]:
    if previous is None:
        return {}
    seconds = _elapsed(previous, current)
    if seconds <= 0:
        return {}
    rates: dict[str, float] = {}
    for metric, column, modulus, octets in _COUNTERS:
        old, new = previous.counters.get(column), current.counters.get(column)
        if old is None or new is None or metric in rates:
            continue  # the 64-bit octet counters come first and win
        delta = new - old
        if delta < 0:
            # Wrapped, or reset (cleared by an operator, interface re-created, line card
            # swapped) with the agent up. A wrap implies at least as much as the rest of
            # the counter's range: more than the interface can carry means a reset.
            delta += modulus
            if speed_bps:
                # In octets, or in frames for errors and discards.
                limit = _SLACK * speed_bps * seconds / (8 if octets else _MIN_FRAME_BITS)
                if delta > limit:
                    continue
            elif delta > modulus // 2 or not octets:
                # Speed unknown: only a counter half its range back can be a wrap, and an
                # error or discard counter that wraps between two polls is not plausible.
                continue
        rates[metric] = (8.0 if octets else 1.0) * delta / seconds
    if speed_bps:
        for direction in ("in", "out"):
            bps = rates.get(f"{direction}_bps")
            if bps is not None:
                rates[f"{direction}_utilisation_pct"] = 100.0 * bps / speed_bps
    return rates


def _elapsed(previous: _Snapshot, current: _Snapshot) -> float:
    if previous.ticks is not None and current.ticks is not None:
        return ((current.ticks - previous.ticks) % _TICKS) / 100.0
    return current.at - previous.at


def _text(value: Value) -> str:
    if isinstance(value, bytes):
        # Some agents NUL-terminate ifDescr; names in config never carry the NUL.
        value = value.rstrip(b"\x00")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            # DisplayString is ASCII by the MIB; what is not UTF-8 is in practice a
            # Latin-1 alias typed on the device ("Müller GmbH"), and must still match.
            return value.decode("latin-1")
    return "" if value is None or isinstance(value, Missing) else str(value)


def _speed_bps(speed: Value, high_speed: Value) -> float | None:
    """The interface's speed: ifSpeed, or ifHighSpeed (Mbit/s) where ifSpeed saturates."""
    if (
        isinstance(high_speed, int)
        and high_speed > 0
        and (not isinstance(speed, int) or speed >= _SATURATED or speed <= 0)
    ):
        return high_speed * 1_000_000.0
    if isinstance(speed, int) and speed > 0:
        return float(speed)
    return None


def _show(value: Value) -> str:
    if isinstance(value, Missing):
        return {
            Missing.NO_SUCH_OBJECT: "noSuchObject",
            Missing.NO_SUCH_INSTANCE: "noSuchInstance",
            Missing.END_OF_MIB_VIEW: "endOfMibView",
        }[value]
    return repr(value)


def _dotted(oid: Oid) -> str:
    return ".".join(map(str, oid))


def _timeout(key: DeviceKey) -> SnmpFailure:
    tries = key.retries + 1
    hint = " (device unreachable, or the community is wrong)" if key.version == "2c" else ""
    return SnmpFailure(
        Outcome.DOWN,
        f"timeout: no reply from {key} after {tries} x {key.timeout_s:g}s{hint}",
    )


def _indication_failure(key: DeviceKey, indication: Any) -> SnmpFailure:
    if isinstance(indication, errind.RequestTimedOut):
        return _timeout(key)
    if isinstance(indication, _AUTH_PROBLEMS):
        return _usm_failure(
            key, str(indication), "user, auth_key/auth_protocol and priv_key/priv_protocol"
        )
    return SnmpFailure(Outcome.UNKNOWN, f"snmp error from {key}: {indication}")


def _usm_failure(key: DeviceKey, problem: str, check: str) -> SnmpFailure:
    return SnmpFailure(
        Outcome.UNKNOWN,
        f"authentication failed at {key} for user {key.user!r}: {problem}; check {check}",
    )


def _fast_v3_serves(key: DeviceKey) -> bool:
    return key.auth_protocol in AUTH_PROTOCOLS and key.priv_protocol in PRIV_PROTOCOLS


def _from_pysnmp(value: Any) -> Value:
    if isinstance(value, rfc1905.NoSuchObject):
        return Missing.NO_SUCH_OBJECT
    if isinstance(value, rfc1905.NoSuchInstance):
        return Missing.NO_SUCH_INSTANCE
    if isinstance(value, rfc1905.EndOfMibView):
        return Missing.END_OF_MIB_VIEW
    # Duck-typed: pyasn1 ships no type stubs, and pysnmp's value classes derive from it.
    if isinstance(value, rfc1902.Null):  # before OCTET STRING: pyasn1's Null is one
        return None
    if hasattr(value, "asOctets"):  # OCTET STRING, IpAddress, Opaque, Bits
        return bytes(value.asOctets())
    if hasattr(value, "asTuple"):  # OBJECT IDENTIFIER
        return _dotted(tuple(value))
    return int(value)
