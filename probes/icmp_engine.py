"""One ICMP echo engine per process: bursts for many targets over one shared socket per
address family, replies matched and timed here rather than by a socket per target.

Why: with a raw socket per concurrent target (icmplib's ``async_multiping``), Linux hands
every raw ICMP socket a copy of every ICMP packet, so thousands of targets drown each
other and replies are lost that the network delivered. Here one socket per family is
opened lazily, made non-blocking and watched with ``loop.add_reader``; each outstanding
echo is keyed by (identifier, sequence) on raw sockets, or by (peer, sequence) on the
unprivileged datagram sockets whose identifier the kernel rewrites; timeouts live in one
heap served by one timer; sends go out from one paced queue.

It must never: open a socket or start a task or thread per target or per echo, block the
event loop, send to any address a caller did not pass in, or report a reply the network
did not deliver (an unmatched or late reply is counted, never credited).
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import ipaddress
import itertools
import logging
import math
import os
import socket
import struct
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from time import perf_counter_ns, time_ns
from typing import Any, Final

log = logging.getLogger(__name__)

# Linux socket options the socket module does not name (asm-generic/socket.h, in.h).
_SO_RCVBUFFORCE: Final = 33
_SO_TIMESTAMPNS: Final = 35  # SCM_TIMESTAMPNS has the same value
_SO_RXQ_OVFL: Final = 40
_SOL_RAW: Final = 255
_ICMP_FILTER: Final = 1
_ICMP6_FILTER: Final = 1

_ECHO_REQUEST: Final = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY: Final = {socket.AF_INET: 0, socket.AF_INET6: 129}

PAYLOAD_BYTES: Final = 56  # what ping and fping send by default
_COOKIE_BYTES: Final = 8
_RECV_BYTES: Final = 2048
_ANC_BYTES: Final = socket.CMSG_SPACE(16) + socket.CMSG_SPACE(4)
# A small echo reply takes about this much of the receive buffer (skb overhead included).
_BYTES_PER_QUEUED_REPLY: Final = 2048
_RAW_IDENTIFIERS: Final = 4  # 4 x 65,536 (id, seq) keys: outstanding echoes, not targets
_READ_BUDGET: Final = 4096  # replies handled per wake-up before others get the loop
_RETRY_FULL_NS: Final = 1_000_000  # socket send buffer full: try again in 1 ms

_HEADER: Final = struct.Struct("!BBHHH")
_ID_SEQ: Final = struct.Struct("!HH")
_TIMESPEC: Final = struct.Struct("@qq")
_U32: Final = struct.Struct("@I")

DEFAULT_MAX_RATE_PPS: Final = 10_000.0
DEFAULT_RCVBUF_BYTES: Final = 8 * 1024 * 1024

_TRANSIENT_SEND_ERRORS: Final = frozenset({errno.EAGAIN, errno.ENOBUFS, errno.EINTR})


class IcmpUnavailable(Exception):
    """This process cannot send ICMP for the address family: the monitor's failure, not the
    target's, so the caller reports ``unknown``."""


@dataclass(slots=True)
class EngineStats:
    """Counters since the engine was created (or last bound to a new event loop)."""

    sent: int = 0
    replies: int = 0  # matched within the echo's timeout
    late: int = 0  # matched, but after the timeout: counted lost
    unmatched: int = 0  # echo replies not ours, duplicated, or for echoes already expired
    send_errors: int = 0  # the kernel refused the echo for its target (no route, ...)
    kernel_drops: int = 0  # replies dropped because the receive buffer was full


@dataclass(frozen=True, slots=True)
class BurstResult:
    """One burst to one address: per echo, in send order, its RTT in ms or None if lost."""

    rtts_ms: tuple[float | None, ...]
    send_error: str | None = None  # the last reason the kernel refused an echo
    send_errno: int | None = None  # and its errno
    refused: int = 0  # echoes the kernel refused to send (never on the wire)

    @property
    def sent(self) -> int:
        return len(self.rtts_ms)

    @property
    def received(self) -> int:
        return sum(rtt is not None for rtt in self.rtts_ms)


class _Burst:
    __slots__ = (
        "cancelled",
        "count",
        "future",
        "next_index",
        "peer",
        "pending",
        "refused",
        "rtts",
        "send_errno",
        "send_error",
        "sock",
        "sockaddr",
        "spacing_ns",
        "timeout_ns",
    )

    def __init__(
        self,
        sock: _IcmpSocket,
        sockaddr: tuple[Any, ...],
        peer: str,
        count: int,
        spacing_ns: int,
        timeout_ns: int,
        future: asyncio.Future[None],
    ) -> None:
        self.sock = sock
        self.sockaddr = sockaddr
        self.peer = peer
        self.count = count
        self.spacing_ns = spacing_ns
        self.timeout_ns = timeout_ns
        self.future = future
        self.next_index = 0
        self.pending = count
        self.rtts: list[float | None] = [None] * count
        self.send_error: str | None = None
        self.send_errno: int | None = None
        self.refused = 0
        self.cancelled = False


# An outstanding echo: (burst, index in burst, send time ns, deadline ns, serial).
_Echo = tuple[_Burst, int, int, int, int]


class _IcmpSocket:
    """One ICMP socket of one family, with its own key space of outstanding echoes."""

    def __init__(self, family: socket.AddressFamily, privileged: bool, rcvbuf_bytes: int):
        self.family = family
        self.raw = privileged
        kind = socket.SOCK_RAW if privileged else socket.SOCK_DGRAM
        proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
        self.sock = socket.socket(family, kind, proto)
        try:
            self.sock.setblocking(False)
            self._configure(rcvbuf_bytes)
        except OSError:
            self.sock.close()
            raise
        self.fileno = self.sock.fileno()
        # Only raw IPv4 sockets see the IP header; ICMPv6 and datagram sockets do not.
        self.ip_header = privileged and family == socket.AF_INET
        self.request_type = _ECHO_REQUEST[family]
        self.reply_type = _ECHO_REPLY[family]
        self.outstanding: dict[Hashable, _Echo] = {}
        self.kernel_drops = 0
        self._tokens = itertools.count()
        self._id_base = int.from_bytes(os.urandom(2), "big")
        self._token_space = _RAW_IDENTIFIERS * 65536 if privileged else 65536

    def _configure(self, rcvbuf_bytes: int) -> None:
        sock = self.sock
        try:
            # Root may exceed net.core.rmem_max; everyone else gets at most that.
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, rcvbuf_bytes)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        self.rcvbuf_bytes = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        # Kernel receive timestamps keep RTTs true while the event loop is busy elsewhere;
        # the overflow counter tells replies lost in our buffer from replies never sent.
        self.timestamps = _try_setsockopt(sock, socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        _try_setsockopt(sock, socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
        if self.raw and self.family == socket.AF_INET:
            # A raw socket gets a copy of every ICMP packet on the host; let the kernel
            # keep only echo replies (a set bit blocks that type).
            _try_setsockopt(sock, _SOL_RAW, _ICMP_FILTER, _U32.pack(~(1 << 0) & 0xFFFFFFFF))
        elif self.raw:
            blocked = [0xFFFFFFFF] * 8
            blocked[129 >> 5] &= ~(1 << (129 & 31))
            _try_setsockopt(sock, socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *blocked))

    @property
    def queued_reply_capacity(self) -> int:
        return max(16, self.rcvbuf_bytes // _BYTES_PER_QUEUED_REPLY)

    def allocate(self, peer: str) -> tuple[Hashable, int, int] | None:
        """A free key and the (identifier, sequence) to put on the wire, or None if every
        key is outstanding."""
        outstanding = self.outstanding
        for _ in range(self._token_space):
            token = next(self._tokens) % self._token_space
            seq = token & 0xFFFF
            if self.raw:
                ident = (self._id_base + (token >> 16)) & 0xFFFF
                key: Hashable = (ident, seq)
            else:
                ident = 0  # the kernel puts the socket's own identifier here
                key = (peer, seq)
            if key not in outstanding:
                return key, ident, seq
        return None

    def close(self) -> None:
        self.sock.close()


def _try_setsockopt(sock: socket.socket, level: int, option: int, value: int | bytes) -> bool:
    try:
        sock.setsockopt(level, option, value)
    except OSError:
        return False
    return True


def _ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def sockaddr_for(address: str) -> tuple[socket.AddressFamily, tuple[Any, ...], str]:
    """(family, sockaddr, peer key) for an IP address literal, IPv6 scope allowed.

    Raises ValueError for anything that is not an IP address: names are resolved by the
    caller, never here."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        return socket.AF_INET, (str(ip), 0), str(ip)
    scope = 0
    if ip.scope_id:
        name = ip.scope_id
        try:
            scope = int(name) if name.isdigit() else socket.if_nametoindex(name)
        except OSError:
            raise ValueError(f"{address!r} names an unknown interface") from None
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    return socket.AF_INET6, (str(ip), 0, 0, scope), str(ip)


class IcmpEngine:
    """Sends echo bursts and collects their replies for every ICMP probe of a process.

    `privileged` chooses raw sockets (True) or unprivileged datagram sockets (False).
    `max_rate_pps` caps echoes per second over all targets (None: no cap, for benchmarks);
    independently, no more echoes go out per event-loop turn than the receive buffer can
    hold replies for, so the reader always gets its turn before the buffer could overflow.
    The engine binds to the event loop that first uses it; a later loop starts it afresh.
    `clock` gives the monotonic nanoseconds that spacing, pacing, timeouts and RTTs are
    measured in (tests pass one they move themselves; timers still wait in real time).
    """

    def __init__(
        self,
        *,
        privileged: bool,
        max_rate_pps: float | None = DEFAULT_MAX_RATE_PPS,
        rcvbuf_bytes: int = DEFAULT_RCVBUF_BYTES,
        clock: Callable[[], int] = perf_counter_ns,
    ) -> None:
        if max_rate_pps is not None and max_rate_pps <= 0:
            raise ValueError(f"max_rate_pps {max_rate_pps} is not positive")
        self.privileged = privileged
        self.max_rate_pps = max_rate_pps
        self._rcvbuf_bytes = rcvbuf_bytes
        self._clock = clock
        self.stats = EngineStats()
        self._cookie = os.urandom(_COOKIE_BYTES)
        payload = self._cookie + bytes(PAYLOAD_BYTES - _COOKIE_BYTES)
        self._payload = payload
        self._payload_sum = _ones_complement_sum(payload)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: dict[int, _IcmpSocket] = {}
        self._unavailable_logged: set[int] = set()
        self._serial = itertools.count()
        self._send_queue: list[tuple[int, int, _Burst]] = []  # (due ns, serial, burst)
        self._deadlines: list[tuple[int, int, _IcmpSocket, Hashable]] = []
        self._pump_handle: asyncio.TimerHandle | asyncio.Handle | None = None
        self._pump_at = 0
        self._expire_handle: asyncio.TimerHandle | None = None
        self._expire_at = 0
        self._batch = 1024
        self._tokens = 0.0
        self._tokens_at = self._clock()

    # --- public ---------------------------------------------------------------------

    async def ping(
        self, address: str, *, count: int, spacing_s: float, timeout_s: float
    ) -> BurstResult:
        """Send `count` echoes to the IP address `address`, at least `spacing_s` apart,
        each waited for `timeout_s`; return when every echo has a reply or has timed out.

        Raises ValueError if `address` is not an IP address and IcmpUnavailable if no
        socket for its family can be opened."""
        if count < 1:
            raise ValueError(f"count {count} is below 1")
        loop = self._bind_loop()
        family, sockaddr, peer = sockaddr_for(address)
        sock = self._socket(family, loop)
        future: asyncio.Future[None] = loop.create_future()
        burst = _Burst(
            sock,
            sockaddr,
            peer,
            count,
            int(spacing_s * 1e9),
            int(timeout_s * 1e9),
            future,
        )
        now = self._clock()
        heapq.heappush(self._send_queue, (now, next(self._serial), burst))
        self._schedule_pump(now, now)
        try:
            await future
        except asyncio.CancelledError:
            # Queued echoes are dropped when they come up; replies to sent ones are ignored.
            burst.cancelled = True
            raise
        return BurstResult(tuple(burst.rtts), burst.send_error, burst.send_errno, burst.refused)

    @property
    def outstanding(self) -> int:
        return sum(len(s.outstanding) for s in self._sockets.values())

    def bursts_at_once(self, shapes: Iterable[tuple[int, float]]) -> int | None:
        """How many bursts the engine can carry at once, for bursts of these shapes:
        (echoes, the longest a burst takes in seconds). At `max_rate_pps` a burst of n
        echoes taking s seconds holds its place for s / n seconds of the engine's echoes,
        so max_rate_pps x max(s / n) bursts are in flight when it runs at full pace (more
        would only wait in its send queue, where nobody sees them wait). A raw socket can
        also await at most its (identifier, sequence) keys' worth of echoes. None: no
        bound (unpaced, on datagram sockets)."""
        bounds = []
        shapes = list(shapes)
        if self.max_rate_pps is not None and shapes:
            per_echo_s = max(seconds / count for count, seconds in shapes)
            bounds.append(math.ceil(self.max_rate_pps * per_echo_s))
        if self.privileged and shapes:
            bounds.append(_RAW_IDENTIFIERS * 65536 // max(count for count, _ in shapes))
        return max(1, min(bounds)) if bounds else None

    def close(self) -> None:
        """Close the sockets; bursts still waiting fail with IcmpUnavailable."""
        loop, self._loop = self._loop, None
        for handle in (self._pump_handle, self._expire_handle):
            if handle is not None:
                handle.cancel()
        self._pump_handle = self._expire_handle = None
        waiting = [burst for _, _, burst in self._send_queue]
        for s in self._sockets.values():
            waiting.extend(echo[0] for echo in s.outstanding.values())
            if loop is not None and not loop.is_closed():
                loop.remove_reader(s.fileno)
            s.close()
        for burst in waiting:
            if not burst.future.done() and not burst.future.get_loop().is_closed():
                burst.future.set_exception(IcmpUnavailable("icmp engine closed"))
        self._sockets.clear()
        self._send_queue.clear()
        self._deadlines.clear()

    # --- sockets --------------------------------------------------------------------

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self.close()
                self.stats = EngineStats()
            self._loop = loop
        return loop

    def _socket(self, family: socket.AddressFamily, loop: asyncio.AbstractEventLoop) -> _IcmpSocket:
        s = self._sockets.get(family)
        if s is not None:
            return s
        kind = "raw" if self.privileged else "datagram"
        name = "ipv4" if family == socket.AF_INET else "ipv6"
        try:
            s = _IcmpSocket(family, self.privileged, self._rcvbuf_bytes)
        except OSError as exc:
            if family not in self._unavailable_logged:
                self._unavailable_logged.add(family)
                log.warning("icmp socket unavailable family=%s kind=%s error=%s", name, kind, exc)
            raise IcmpUnavailable(
                f"cannot open {kind} ICMP socket for {name}: {exc.strerror or exc}"
            ) from exc
        loop.add_reader(s.fileno, self._on_readable, s)
        self._sockets[family] = s
        self._batch = min(1024, *(x.queued_reply_capacity // 2 for x in self._sockets.values()))
        log.info(
            "icmp socket open family=%s kind=%s rcvbuf_bytes=%d kernel_timestamps=%s batch=%d",
            name,
            kind,
            s.rcvbuf_bytes,
            s.timestamps,
            self._batch,
        )
        return s

    # --- sending --------------------------------------------------------------------

    def _schedule_pump(self, when_ns: int, now_ns: int) -> None:
        if self._pump_handle is not None:
            if self._pump_at <= when_ns:
                return
            self._pump_handle.cancel()
        assert self._loop is not None
        self._pump_at = when_ns
        if when_ns <= now_ns:
            self._pump_handle = self._loop.call_soon(self._pump)
        else:
            self._pump_handle = self._loop.call_later((when_ns - now_ns) / 1e9, self._pump)

    def _pump(self) -> None:
        """Send what is due, at most one batch, then yield so replies get read."""
        self._pump_handle = None
        now = self._clock()
        limit = self._batch
        rate = self.max_rate_pps
        if rate is not None:
            cap = max(1.0, min(float(limit), rate / 100))  # at most 10 ms worth at once
            self._tokens = min(cap, self._tokens + (now - self._tokens_at) * rate / 1e9)
            self._tokens_at = now
            limit = min(limit, int(self._tokens))
        queue = self._send_queue
        sent = 0
        retry_at = 0
        while queue and sent < limit and queue[0][0] <= now:
            entry = heapq.heappop(queue)
            burst = entry[2]
            if burst.cancelled:
                continue
            if not self._send_one(burst):
                heapq.heappush(queue, entry)
                retry_at = now + _RETRY_FULL_NS
                break
            sent += 1
        if rate is not None:
            self._tokens -= sent
        if not queue:
            return
        now = self._clock()
        due = max(queue[0][0], retry_at)
        if rate is not None and self._tokens < 1:
            due = max(due, now + int((1 - self._tokens) * 1e9 / rate))
        self._schedule_pump(due, now)

    def _send_one(self, burst: _Burst) -> bool:
        """Send the burst's next echo; False if the socket cannot take it right now."""
        s = burst.sock
        allocated = s.allocate(burst.peer)
        if allocated is None:
            return False
        key, ident, seq = allocated
        if s.raw and s.family == socket.AF_INET:
            total = self._payload_sum + (s.request_type << 8) + ident + seq
            total = (total & 0xFFFF) + (total >> 16)
            total = (total & 0xFFFF) + (total >> 16)
            checksum = ~total & 0xFFFF
        else:
            checksum = 0  # the kernel fills in ICMPv6 and datagram-socket checksums
        packet = _HEADER.pack(s.request_type, 0, checksum, ident, seq) + self._payload
        index = burst.next_index
        sent_ns = self._clock()
        try:
            s.sock.sendto(packet, burst.sockaddr)
        except OSError as exc:
            if isinstance(exc, BlockingIOError | InterruptedError) or (
                exc.errno in _TRANSIENT_SEND_ERRORS
            ):
                return False
            # The kernel refused this target (no route, neighbour failed, ...): the echo
            # never left; whose trouble that is, the caller judges (probes.faults). The
            # burst goes on.
            self.stats.send_errors += 1
            burst.send_error = exc.strerror or str(exc)
            burst.send_errno = exc.errno
            burst.refused += 1
            burst.next_index += 1
            self._resolve(burst, index, None)
        else:
            self.stats.sent += 1
            burst.next_index += 1
            deadline = sent_ns + burst.timeout_ns
            serial = next(self._serial)
            s.outstanding[key] = (burst, index, sent_ns, deadline, serial)
            heapq.heappush(self._deadlines, (deadline, serial, s, key))
            if self._expire_handle is None or deadline < self._expire_at:
                self._schedule_expire(deadline, sent_ns)
        if burst.next_index < burst.count and not burst.cancelled:
            # Spacing counts from the actual send, so a late echo never bunches its next.
            heapq.heappush(
                self._send_queue, (sent_ns + burst.spacing_ns, next(self._serial), burst)
            )
        return True

    # --- receiving ------------------------------------------------------------------

    def _on_readable(self, s: _IcmpSocket) -> None:
        self._drain(s, _READ_BUDGET)

    def _drain(self, s: _IcmpSocket, budget: int) -> bool:
        """Read and match up to `budget` replies; True if the socket was emptied."""
        recvmsg = s.sock.recvmsg
        stats = self.stats
        clock = self._clock
        # Kernel timestamps are wall-clock; this maps them onto the engine's clock.
        offset = time_ns() - clock()
        for _ in range(budget):
            try:
                data, ancdata, _flags, addr = recvmsg(_RECV_BYTES, _ANC_BYTES)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError as exc:
                log.warning("icmp receive failed family=%s error=%s", s.family.name, exc)
                return True
            now = clock()
            arrived = now
            for level, kind, value in ancdata:
                if level != socket.SOL_SOCKET:
                    continue
                if kind == _SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
                    sec, nsec = _TIMESPEC.unpack_from(value)
                    kernel = sec * 1_000_000_000 + nsec - offset
                    if kernel <= now:
                        arrived = kernel
                elif kind == _SO_RXQ_OVFL and len(value) >= _U32.size:
                    drops = _U32.unpack_from(value)[0]
                    if drops != s.kernel_drops:
                        stats.kernel_drops += (drops - s.kernel_drops) & 0xFFFFFFFF
                        s.kernel_drops = drops
                        log.warning(
                            "icmp receive buffer overflowed family=%s dropped_total=%d",
                            s.family.name,
                            stats.kernel_drops,
                        )
            self._match(s, data, addr, arrived, now)
        return False

    def _match(self, s: _IcmpSocket, data: bytes, addr: Any, arrived: int, now: int) -> None:
        start = (data[0] & 0x0F) << 2 if s.ip_header and data else 0
        if len(data) < start + 8 + _COOKIE_BYTES or data[start] != s.reply_type:
            return  # not an echo reply: the filter lets none through on raw sockets
        if data[start + 8 : start + 8 + _COOKIE_BYTES] != self._cookie:
            self.stats.unmatched += 1  # another pinger on this host
            return
        ident, seq = _ID_SEQ.unpack_from(data, start + 4)
        peer = addr[0].split("%", 1)[0]
        key: Hashable = (ident, seq) if s.raw else (peer, seq)
        echo = s.outstanding.get(key)
        # Only the target itself may answer for it: a raw socket's key does not name it.
        if echo is None or echo[0].peer != peer:
            self.stats.unmatched += 1  # a duplicate, a reply after its echo expired, ...
            return
        del s.outstanding[key]
        burst, index, sent_ns, deadline, _serial = echo
        if arrived < sent_ns:  # the wall clock stepped between send and receive
            arrived = now
        if arrived > deadline:
            self.stats.late += 1
            self._resolve(burst, index, None)
            return
        self.stats.replies += 1
        self._resolve(burst, index, round((arrived - sent_ns) / 1e6, 3))

    # --- timeouts -------------------------------------------------------------------

    def _schedule_expire(self, when_ns: int, now_ns: int) -> None:
        if self._expire_handle is not None:
            self._expire_handle.cancel()
        assert self._loop is not None
        self._expire_at = when_ns
        self._expire_handle = self._loop.call_later(max(0, when_ns - now_ns) / 1e9, self._expire)

    def _expire(self) -> None:
        self._expire_handle = None
        # Replies may sit unread while the loop was busy; they arrived in time (their kernel
        # timestamp says so), so read them all before calling any echo lost.
        for s in list(self._sockets.values()):
            while not self._drain(s, _READ_BUDGET):
                pass
        now = self._clock()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _deadline, serial, s, key = heapq.heappop(deadlines)
            echo = s.outstanding.get(key)
            if echo is not None and echo[4] == serial:
                del s.outstanding[key]
                self._resolve(echo[0], echo[1], None)
        if deadlines:
            self._schedule_expire(deadlines[0][0], now)

    def _resolve(self, burst: _Burst, index: int, rtt_ms: float | None) -> None:
        burst.rtts[index] = rtt_ms
        burst.pending -= 1
        if burst.pending == 0 and not burst.future.done():
            burst.future.set_result(None)
