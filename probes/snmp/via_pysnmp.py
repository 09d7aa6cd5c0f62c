"""SNMP through pysnmp: the walks, SNMPv3 with DES privacy, and the comparison path.

What the hand-written codecs do not serve goes through pysnmp's asyncio engine: one
engine for everything, except that pysnmp keeps one USM entry per user name, so the same
user name with other keys (per-device passwords) gets an engine of its own. Building an
engine loads pysnmp's MIB modules from disk, in a thread. pysnmp caches each SNMPv3
agent's engine ID and keeps sending to a stale one; `PysnmpEngines` checks it with one
discovery through `probes.snmp.v3` where a change is likely, and makes pysnmp forget it.

Failures are raised as `SnmpFailure`. This module sends nothing but the GETs and walks it
is asked for (and those discoveries), to the address it is given; it never bounds
concurrency itself: the caller holds the slots.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as hlapi
from pysnmp.proto import errind, rfc1902, rfc1905

from kernel.domain import Outcome
from probes.snmp.mib import Oid, dotted, error_status_name
from probes.snmp.targets import DeviceKey, SnmpFailure, timeout_failure, usm_failure
from probes.snmp.v3 import V3Client
from probes.snmp.wire import Missing, SnmpTimeout, Value, encode_oid, enlarge_receive_buffer

log = logging.getLogger(__name__)

Address = tuple[Any, ...]

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


@dataclass(slots=True)
class _Target:
    """A device as pysnmp addresses it."""

    auth: Any  # CommunityData or UsmUserData
    target: Any  # the transport target with the configured retries
    # Targets of their own for a request's remaining tries: retries -> target.
    by_retries: dict[int, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Session:
    """What one request to a device goes through."""

    engine: Any
    auth: Any
    target: Any  # with the device's configured retries


class PysnmpEngines:
    """The process's pysnmp engines and each device's target; one per event loop.

    `v3` is the fast codec's client, borrowed for engine-ID discoveries (its owner closes
    it); `on_send` is called for every GET sent through pysnmp (to count them).
    """

    def __init__(self, v3: V3Client, on_send: Callable[[], None]) -> None:
        self._v3 = v3
        self._on_send = on_send
        self._engines: dict[str, Any] = {}
        self._usm_owner: dict[str, tuple[str, ...]] = {}  # user name -> credentials on ""
        self._engine_lock = asyncio.Lock()
        self._targets: dict[DeviceKey, _Target] = {}
        self._buffers_enlarged: set[int] = set()

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close_dispatcher()
        self._engines.clear()
        self._targets.clear()

    async def session(self, key: DeviceKey, address: Address) -> Session:
        """(engine, auth data, transport target) for pysnmp requests to `key`."""
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
        target = self._targets.get(key)
        if target is None:
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
            target = _Target(auth, await _transport_target(key, address, key.retries))
            self._targets[key] = target
        return Session(engine, target.auth, target.target)

    def enlarge_buffer(self, engine: Any) -> None:
        """Enlarge the receive buffer of the engine's sockets, once they exist."""
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

    async def get(
        self, key: DeviceKey, address: Address, oids: Sequence[Oid]
    ) -> tuple[int, int, dict[bytes, Value]]:
        """(error status, error index, values by OID content bytes) of one GET."""
        session = await self.session(key, address)
        engine, auth, target = session.engine, session.auth, session.target
        split = key.version == "3" and key.retries > 0 and _holds_engine(engine, target)
        if split:
            # The first try alone: unanswered, it may be a changed engine ID that pysnmp
            # would keep sending to. A discovery tells, and the rest of the tries follow.
            target = await self._target(key, address, retries=0)
        for attempt in range(2):
            self._on_send()
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
            self.enlarge_buffer(engine)
            if not indication:
                break
            if attempt == 0 and split and isinstance(indication, errind.RequestTimedOut):
                target = await self._target(key, address, retries=key.retries - 1)
                await self.check_engine(engine, target, key, address, retries=key.retries - 1)
                continue
            if attempt or not self._rediscover(engine, key, address, indication):
                raise _indication_failure(key, indication)
            target = await self._target(key, address, retries=key.retries)
        values = {encode_oid(tuple(name)): _from_pysnmp(value) for name, value in varbinds}
        return int(status), int(index), values

    async def _target(self, key: DeviceKey, address: Address, *, retries: int) -> Any:
        """A transport target of its own to `key` with `retries` (a request's remaining tries)."""
        targets = self._targets[key].by_retries
        target = targets.get(retries)
        if target is None:
            target = await _transport_target(key, address, retries)
            targets[retries] = target
        return target

    def _rediscover(self, engine: Any, key: DeviceKey, address: Address, indication: Any) -> bool:
        """After a USM report or a timeout, make pysnmp learn the agent's engine ID again.

        pysnmp keeps the engine ID it discovered per address for minutes and, when the
        device's engine ID changed, keeps sending to the old one: net-snmp's report goes
        unheeded (the request times out) and a pysnmp agent's usmStatsUnknownUserNames is
        final. True when the request is worth resending now (a report came back at once);
        after a timeout the next request rediscovers, within its own time.
        """
        timed_out = isinstance(indication, errind.RequestTimedOut)
        if key.version != "3" or not (timed_out or isinstance(indication, _AUTH_PROBLEMS)):
            return False
        if not _forget_peer_engine(engine, address):
            return False  # it was a discovery that failed: nothing learnt to forget
        log.info(
            "snmp v3 engine to be discovered again device=%s reason=%s",
            key,
            "timeout" if timed_out else indication,
        )
        return not timed_out

    async def check_engine(
        self,
        engine: Any,
        target: Any,
        key: DeviceKey,
        address: Address,
        *,
        retries: int | None = None,
    ) -> None:
        """Is the engine ID pysnmp holds for a v3 agent still the agent's own?

        Asked before a walk (which comes after a long pause, or after the agent restarted,
        when a changed engine ID is likeliest) and when a GET's first try went unanswered:
        pysnmp would only time out on a stale one. One discovery through our codec (a
        small unauthenticated exchange) tells; `retries` bounds it to the time left.
        """
        if key.version != "3":
            return
        held = _holds_engine(engine, target)
        if held is None:
            return  # pysnmp discovers it itself
        try:
            current = await self._v3.discover(
                address,
                timeout_s=key.timeout_s,
                retries=key.retries if retries is None else retries,
            )
        except SnmpTimeout:
            raise timeout_failure(key) from None
        if held != current and _forget_peer_engine(engine, address):
            log.info(
                "snmp v3 engine discovered again device=%s reason=engine-id engine_id=%s was=%s",
                key,
                current.hex(),
                held.hex(),
            )

    async def walk(
        self, session: Session, key: DeviceKey, address: Address, column: Oid
    ) -> dict[int, Value]:
        """ifIndex -> value of one IF-MIB column, by GETBULK."""
        await self.check_engine(session.engine, session.target, key, address)
        rows: dict[int, Value] = {}
        for attempt in range(2):
            try:
                rows = await _walk_once(session, key, column)
                break
            except _WalkIndication as failed:
                if attempt or not self._rediscover(session.engine, key, address, failed.indication):
                    raise _indication_failure(key, failed.indication) from None
        return rows


async def _transport_target(key: DeviceKey, address: Address, retries: int) -> Any:
    target_class = hlapi.Udp6TransportTarget if ":" in address[0] else hlapi.UdpTransportTarget
    return await target_class.create(address[:2], timeout=key.timeout_s, retries=retries)


async def _walk_once(session: Session, key: DeviceKey, column: Oid) -> dict[int, Value]:
    rows: dict[int, Value] = {}
    try:
        async for indication, status, _index, varbinds in hlapi.bulk_walk_cmd(
            session.engine,
            session.auth,
            session.target,
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
                raise SnmpFailure(
                    Outcome.UNKNOWN,
                    f"agent {key} answered {error_status_name(int(status))} "
                    f"walking {dotted(column)}",
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


def _forget_peer_engine(engine: Any, address: Address) -> bool:
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


def _indication_failure(key: DeviceKey, indication: Any) -> SnmpFailure:
    if isinstance(indication, errind.RequestTimedOut):
        return timeout_failure(key)
    if isinstance(indication, _AUTH_PROBLEMS):
        return usm_failure(
            key, str(indication), "user, auth_key/auth_protocol and priv_key/priv_protocol"
        )
    return SnmpFailure(Outcome.UNKNOWN, f"snmp error from {key}: {indication}")


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
        return dotted(tuple(value))
    return int(value)
