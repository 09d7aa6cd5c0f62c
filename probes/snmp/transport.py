"""Every SNMP request of a poller goes through here: which client sends it, and the bounds.

GETs go through hand-written codecs that cost a fraction of pysnmp's CPU: SNMPv2c through
`probes.snmp.v2c`, SNMPv3 authPriv through `probes.snmp.v3` (USM with MD5, SHA-1 or SHA-2
authentication and AES-128, -192 or -256 privacy). SNMPv3 with DES privacy, and the
walks, go through pysnmp (`probes.snmp.via_pysnmp`); `fast_v2c=False` and
`fast_v3=False` send those GETs through pysnmp too (for comparison). Concurrency is
bounded per device (`Peer.slots`) and per poller.

A `Transport` holds sockets and engines bound to one event loop: its owner makes a new
one for another loop, and closes the old. Failures are raised as `SnmpFailure`. It sends
nothing but SNMP requests to the configured devices, and never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kernel.domain import Outcome
from probes.snmp.mib import Oid, encoded
from probes.snmp.targets import DeviceKey, SnmpFailure, timeout_failure, usm_failure
from probes.snmp.v2c import V2cClient
from probes.snmp.v3 import AUTH_PROTOCOLS, PRIV_PROTOCOLS, UsmError, UsmUser, V3Client
from probes.snmp.via_pysnmp import PysnmpEngines
from probes.snmp.wire import Response, SnmpTimeout, Value


@dataclass(slots=True)
class Peer:
    """A device as requests reach it."""

    key: DeviceKey
    slots: asyncio.Semaphore  # its requests in flight
    address: tuple[Any, ...] | None = None  # resolved on the first request
    usm: UsmUser | None = None  # the fast v3 path's user, when it serves this device


@dataclass(slots=True)
class RequestCounts:
    """Counted for the benchmark and the logs; never reset."""

    requests: int = 0
    pysnmp_gets: int = 0  # of those requests, the GETs that went through pysnmp
    walks: int = 0


@dataclass(slots=True)
class Get:
    """One GET's answer, keyed by the OID's BER content bytes."""

    error_status: int
    error_index: int
    values: dict[bytes, Value]
    round_trip_ms: float
    received_at: float  # monotonic seconds


class Transport:
    """The clients of one event loop, and the poller-wide bound on requests in flight."""

    def __init__(
        self, counts: RequestCounts, *, max_in_flight: int, fast_v2c: bool, fast_v3: bool
    ) -> None:
        self._counts = counts
        self._slots = asyncio.Semaphore(max_in_flight)
        self._fast_v2c = fast_v2c
        self._fast_v3 = fast_v3
        # Sockets open on a client's first request.
        self._v2c = V2cClient()
        self._v3 = V3Client()
        self._pysnmp = PysnmpEngines(self._v3, on_send=self._count_pysnmp_get)

    def close(self) -> None:
        self._v2c.close()
        self._v3.close()
        self._pysnmp.close()

    def _count_pysnmp_get(self) -> None:
        self._counts.pysnmp_gets += 1

    async def resolve(self, peer: Peer) -> tuple[Any, ...]:
        """The peer's address, looked up once."""
        if peer.address is None:
            loop = asyncio.get_running_loop()
            key = peer.key
            try:
                infos = await loop.getaddrinfo(key.host, key.port, type=socket.SOCK_DGRAM)
            except socket.gaierror as exc:
                raise SnmpFailure(
                    Outcome.DOWN, f"dns: cannot resolve {key.host} ({exc.strerror or exc})"
                ) from None
            peer.address = infos[0][4]
        return peer.address

    async def get(self, peer: Peer, oids: Sequence[Oid]) -> Get:
        """One GET of `oids` (the peer's address resolved)."""
        key = peer.key
        async with peer.slots, self._slots:
            self._counts.requests += 1
            started = time.monotonic()
            try:
                response = await self._fast_get(peer, oids)
            except SnmpTimeout:
                raise timeout_failure(key) from None
            except UsmError as exc:
                raise usm_failure(key, exc.problem, exc.check) from None
            if response is None:
                assert peer.address is not None
                error_status, error_index, values = await self._pysnmp.get(key, peer.address, oids)
            else:
                error_status, error_index = response.error_status, response.error_index
                values = dict(response.varbinds)
            received_at = time.monotonic()
        return Get(error_status, error_index, values, (received_at - started) * 1000.0, received_at)

    async def walk(self, peer: Peer, column: Oid) -> dict[int, Value]:
        """ifIndex -> value of one IF-MIB column (the peer's address resolved)."""
        assert peer.address is not None
        session = await self._pysnmp.session(peer.key, peer.address)
        async with peer.slots, self._slots:
            self._counts.walks += 1
            rows = await self._pysnmp.walk(session, peer.key, peer.address, column)
        self._pysnmp.enlarge_buffer(session.engine)
        return rows

    async def _fast_get(self, peer: Peer, oids: Sequence[Oid]) -> Response | None:
        """The GET through our own codecs; None where they do not serve the device."""
        key = peer.key
        assert peer.address is not None
        if key.version == "2c" and self._fast_v2c:
            assert key.community is not None
            return await self._v2c.get(
                peer.address,
                key.community.encode(),
                [encoded(oid)[1] for oid in oids],
                timeout_s=key.timeout_s,
                retries=key.retries,
            )
        if key.version == "3" and self._fast_v3 and _fast_v3_serves(key):
            if peer.usm is None:
                # Config validation: version 3 has all three.
                assert key.user is not None
                assert key.auth_key is not None
                assert key.priv_key is not None
                peer.usm = UsmUser(
                    key.user, key.auth_protocol, key.auth_key, key.priv_protocol, key.priv_key
                )
            return await self._v3.get(
                peer.address,
                peer.usm,
                [encoded(oid)[1] for oid in oids],
                timeout_s=key.timeout_s,
                retries=key.retries,
            )
        return None


def _fast_v3_serves(key: DeviceKey) -> bool:
    return key.auth_protocol in AUTH_PROTOCOLS and key.priv_protocol in PRIV_PROTOCOLS
