"""What the hand-written SNMP codecs share: BER, the PDU, and one UDP socket per family.

`probes.snmp.v2c` and `probes.snmp.v3` differ only in the envelope around a PDU (a
community, or USM's header, digest and encryption); the BER reader and writer, the
GetRequest/Response PDU and the socket that matches replies to outstanding requests are
here, once. The BER is the small subset SNMP agents send: definite lengths of at most four
octets, the SMI's application types, the SNMPv2 exception values.

`DatagramClient` sends only the message it is handed, to the address it is handed, and
accepts a reply only from that address and only while the request is outstanding; it
never raises for a target's failure other than as `SnmpTimeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

log = logging.getLogger(__name__)

# A burst of replies to many outstanding requests overflows Linux's default 208 KiB
# datagram buffer (measured: 44 of 300 replies lost at about 256 in flight).
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024

INTEGER, OCTETS, NULL, OID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
GET_REQUEST, RESPONSE, REPORT = 0xA0, 0xA2, 0xA8
_UNSIGNED = {0x41, 0x42, 0x43, 0x46, 0x47}  # Counter32, Gauge32, TimeTicks, Counter64, UInt32
_RAW = {OCTETS, 0x40, 0x44}  # OCTET STRING, IpAddress, Opaque

T = TypeVar("T")


class Missing(Enum):
    """The SNMPv2 exception values an agent puts in place of a value."""

    NO_SUCH_OBJECT = 0x80
    NO_SUCH_INSTANCE = 0x81
    END_OF_MIB_VIEW = 0x82


Value = int | bytes | str | Missing | None
"""INTEGER, Counter32/64, Gauge32 and TimeTicks as int; OCTET STRING, IpAddress and
Opaque as bytes; an OID as dotted text; NULL as None."""


class SnmpTimeout(Exception):
    """No reply after every try."""


@dataclass(frozen=True, slots=True)
class Response:
    """A Response (or, from SNMPv3, Report) PDU."""

    error_status: int  # 0 noError, 1 tooBig, 5 genErr, ... (RFC 3416)
    error_index: int
    varbinds: list[tuple[bytes, Value]]  # (OID as BER content bytes, value)


# -- writing -------------------------------------------------------------------------------


def encode_oid(oid: Sequence[int]) -> bytes:
    """The BER content bytes of an OID (no tag, no length)."""
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] > 39):
        raise ValueError(f"not an OID: {oid!r}")
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0:
            raise ValueError(f"not an OID: {oid!r}")
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def integer(value: int) -> bytes:
    return tlv(INTEGER, value.to_bytes((value.bit_length() + 8) // 8 or 1, "big", signed=True))


def null_varbind(oid: bytes) -> bytes:
    """A request varbind ``{oid, NULL}`` for an OID's content bytes; worth caching."""
    return tlv(SEQUENCE, tlv(OID, oid) + b"\x05\x00")


def encode_pdu(tag: int, request_id: int, varbinds: Sequence[bytes]) -> bytes:
    """A PDU (GetRequest unless `tag` says otherwise) from `null_varbind` encodings."""
    return tlv(
        tag,
        integer(request_id)
        + b"\x02\x01\x00\x02\x01\x00"  # error-status 0, error-index 0
        + tlv(SEQUENCE, b"".join(varbinds)),
    )


# -- reading -------------------------------------------------------------------------------


def decode_oid(content: bytes) -> tuple[int, ...]:
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return ()
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


def header(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at `at`; raises ValueError if cut."""
    if at + 2 > len(data):
        raise ValueError("truncated BER")
    tag = data[at]
    size = data[at + 1]
    at += 2
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 4:
            raise ValueError("unsupported BER length")
        size = int.from_bytes(data[at : at + count], "big")
        at += count
    end = at + size
    if end > len(data):
        raise ValueError("truncated BER")
    return tag, at, end


def expect(data: bytes, at: int, tag: int) -> tuple[int, int]:
    """(content start, content end) of the TLV at `at`, which must carry `tag`."""
    found, start, end = header(data, at)
    if found != tag:
        raise ValueError(f"expected tag 0x{tag:02x}, got 0x{found:02x}")
    return start, end


def read_int(data: bytes, at: int) -> tuple[int, int]:
    """(value, end) of the INTEGER at `at`."""
    start, end = expect(data, at, INTEGER)
    return int.from_bytes(data[start:end], "big", signed=True), end


def decode_pdu(data: bytes, at: int) -> tuple[int, int, Response]:
    """(PDU tag, request id, PDU) of the PDU at `at`; ValueError if it is not one."""
    tag, at, end = header(data, at)
    request_id, at = read_int(data, at)
    error_status, at = read_int(data, at)
    error_index, at = read_int(data, at)
    at, vb_end = expect(data, at, SEQUENCE)
    if vb_end > end:
        raise ValueError("varbinds run past the PDU")
    varbinds: list[tuple[bytes, Value]] = []
    while at < vb_end:
        # The poller's hottest loop, three TLVs a varbind: their headers are read inline
        # when the lengths are in short form, as they are from every agent we know.
        head = data[at : at + 4]
        if len(head) == 4 and head[0] == SEQUENCE and head[2] == OID and head[1] | head[3] < 0x80:
            vb_close, o_start = at + 2 + head[1], at + 4
            at = o_start + head[3]
        else:
            at, vb_close = expect(data, at, SEQUENCE)
            o_start, at = expect(data, at, OID)
        oid = data[o_start:at]
        head = data[at : at + 2]
        if len(head) == 2 and head[1] < 0x80:
            value_tag, v_start, at = head[0], at + 2, at + 2 + head[1]
        else:
            value_tag, v_start, at = header(data, at)
        if not at <= vb_close <= vb_end:
            raise ValueError("varbind runs past its list")
        content = data[v_start:at]
        value: Value
        if value_tag == INTEGER:
            value = int.from_bytes(content, "big", signed=True)
        elif value_tag in _UNSIGNED:
            value = int.from_bytes(content, "big")
        elif value_tag in _RAW:
            value = content
        elif value_tag == NULL:
            value = None
        elif value_tag == OID:
            value = ".".join(map(str, decode_oid(content)))
        elif value_tag in (0x80, 0x81, 0x82):
            value = Missing(value_tag)
        else:
            raise ValueError(f"unknown value tag 0x{value_tag:02x}")
        varbinds.append((oid, value))
        at = vb_close
    return tag, request_id, Response(error_status, error_index, varbinds)


def message_id(data: bytes) -> int:
    """The number a reply is matched by: msgID in SNMPv3, the PDU's request-id before."""
    at, _ = expect(data, 0, SEQUENCE)
    version, at = read_int(data, at)
    if version == 3:
        at, _ = expect(data, at, SEQUENCE)  # msgGlobalData, msgID first
    else:
        _, at = expect(data, at, OCTETS)  # the community
        _, at, _ = header(data, at)  # into the PDU, request-id first
    return read_int(data, at)[0]


# -- the socket ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[Any]
    address: tuple[Any, ...]
    accept: Callable[[bytes], Any]  # the reply's meaning; ValueError: not a reply to us


class DatagramClient(asyncio.DatagramProtocol):
    """One UDP socket per address family, shared by every request its owner sends."""

    def __init__(self) -> None:
        self._transports: dict[int, asyncio.DatagramTransport] = {}
        self._opening: dict[int, asyncio.Lock] = {}
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(random.randrange(1, 1 << 30))  # noqa: S311 - not a secret
        self.dropped = 0  # replies that matched no outstanding request or did not parse

    def next_id(self) -> int:
        """A request id (or SNMPv3 msgID) no outstanding request carries."""
        return next(self._ids) & 0x7FFFFFFF

    async def exchange(
        self,
        address: tuple[Any, ...],
        request_id: int,
        message: bytes,
        accept: Callable[[bytes], T],
        *,
        timeout_s: float,
        retries: int,
        deadline: float | None = None,
    ) -> T:
        """Send `message` to `address` until `accept` takes a reply matched by `request_id`.

        `accept` runs on every datagram from `address` that carries `request_id`; it returns
        what the reply means or raises ValueError for one that is not ours (dropped). Raises
        SnmpTimeout after every try, or once the loop's clock reaches `deadline` (an
        exchange that is one step of a larger request never outlasts the whole).
        """
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        transport = await self._transport(family)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending[request_id] = _Pending(future, address, accept)
        try:
            for _ in range(retries + 1):
                wait_s = timeout_s if deadline is None else min(timeout_s, deadline - loop.time())
                if wait_s <= 0:
                    break
                # The same message on every try, as net-snmp does: a late reply to an
                # earlier try answers the request just as well.
                transport.sendto(message, address)
                done, _pending = await asyncio.wait({future}, timeout=wait_s)
                if done:
                    result: T = future.result()
                    return result
            raise SnmpTimeout
        finally:
            self._pending.pop(request_id, None)
            future.cancel()

    async def _transport(self, family: int) -> asyncio.DatagramTransport:
        transport = self._transports.get(family)
        if transport is not None:
            return transport
        lock = self._opening.setdefault(family, asyncio.Lock())
        async with lock:
            if family not in self._transports:
                loop = asyncio.get_running_loop()
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.setblocking(False)
                enlarge_receive_buffer(sock)
                opened, _ = await loop.create_datagram_endpoint(lambda: self, sock=sock)
                self._transports[family] = opened
        return self._transports[family]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            pending = self._pending.get(message_id(data))
            # The source must be the address asked: anything else is a stray or forged
            # reply and must not become a measurement.
            if pending is None or pending.future.done() or addr[:2] != pending.address[:2]:
                self.dropped += 1
                return
            result = pending.accept(data)
        except ValueError as exc:
            self.dropped += 1
            log.debug("snmp reply dropped peer=%s reason=%s", addr[0], exc)
            return
        pending.future.set_result(result)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the request simply times out.
        log.debug("snmp socket error=%s", exc)

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        for pending in self._pending.values():
            pending.future.cancel()
        self._pending.clear()


def enlarge_receive_buffer(sock: socket.socket) -> int:
    """Raise a UDP socket's receive buffer; returns the size the kernel granted."""
    # SO_RCVBUFFORCE passes net.core.rmem_max when we hold CAP_NET_ADMIN; otherwise
    # SO_RCVBUF gets as much as rmem_max allows.
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    granted = False
    if force is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, force, RECEIVE_BUFFER_BYTES)
            granted = True
    if not granted:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
    size = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    log.debug("snmp socket receive_buffer_bytes=%d", size)
    return size
