"""SNMPv3 GET with USM authPriv on the wire without pysnmp: the SNMP poller's v3 fast path.

pysnmp spends most of an SNMPv3 poll in pyasn1 (BER) and its message-processing layers;
`bench/snmp.py` measures some 30x more interface polls per CPU second through this
module. It builds the RFC 3412 message around the PDU of `probes.snmp.wire` itself and
does USM (RFC 3414) in a few hash and cipher calls:

- engine discovery (a noAuthNoPriv, reportable request with an empty engine ID; the
  usmStatsUnknownEngineIDs report names the agent's engine ID, boots and time), cached per
  agent address, the agent's time then followed on our monotonic clock;
- keys from passwords (RFC 3414 A.2: 1 MiB of the repeated password hashed, then localised
  with the engine ID): the expensive step runs once per password in a thread, never on the
  event loop, and the localised keys are cached per user and engine ID;
- authentication HMAC-MD5-96 and HMAC-SHA-96 (RFC 3414) and the HMAC-SHA-2 protocols of
  RFC 7860 (SHA-224/128-bit, SHA-256/192, SHA-384/256, SHA-512/384); every reply's digest
  is checked in constant time before anything else in it is believed;
- privacy AES-128-CFB (RFC 3826: IV = engine boots, engine time, our 64-bit salt), and
  AES-192 and AES-256 CFB with either key extension in use (`PRIV_PROTOCOLS`): Reeder's
  (the 3DES draft's, net-snmp's ``AES-256-C``, Cisco's), which `aes192`/`aes256` in our
  configuration have always meant and must keep meaning, or Blumenthal's (net-snmp's
  default ``AES-256``, ``aes256-blumenthal``). DES (CBC with a 56-bit key) stays with
  pysnmp: the poller sends those users' GETs there.
- reports: usmStatsNotInTimeWindows resynchronises and retries once. Any report about
  credentials the agent's engine had taken before means the engine may have changed (HA
  failover, a replaced box, an agent that lost its persistent state; net-snmp then says
  usmStatsUnknownEngineIDs, pysnmp's agents usmStatsUnknownUserNames): the engine is
  discovered again and the request resent, once. A report that persists, or one about
  credentials never answered, is a `UsmError` saying which counter and what to check.
- a request that timed out makes the next one to that agent start with a discovery, so an
  engine that changed while the device was silent is learnt as soon as it answers.
  Discoveries and resends share the request's own time (its tries), never add to it; each
  rediscovery logs one INFO line.

An agent that cannot decrypt a request drops it silently (net-snmp does), which would
look like a dead device. Until a user's credentials have been answered once by an engine,
every GET therefore starts with a discovery: an agent that answers that but none of the
encrypted tries is reported as a privacy failure, not as a timeout.

This module must never send anything but the discovery and the requests it is asked to
send, to the address it is given; never trust a reply whose digest it has not checked; and
never raise for a target's failure other than as `SnmpTimeout` or `UsmError`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from probes.snmp.wire import (
    GET_REQUEST,
    OCTETS,
    REPORT,
    RESPONSE,
    SEQUENCE,
    DatagramClient,
    Response,
    SnmpTimeout,
    decode_oid,
    decode_pdu,
    encode_oid,
    encode_pdu,
    expect,
    integer,
    read_int,
    tlv,
)

try:
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # cryptography < 47 keeps CFB among the primitives
    from cryptography.hazmat.primitives.ciphers.modes import CFB

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Auth:
    digest: str  # hashlib's name
    mac_length: int  # octets of the HMAC carried in msgAuthenticationParameters


AUTH_PROTOCOLS: Mapping[str, _Auth] = {
    "md5": _Auth("md5", 12),  # usmHMACMD5AuthProtocol
    "sha": _Auth("sha1", 12),  # usmHMACSHAAuthProtocol
    "sha224": _Auth("sha224", 16),  # usmHMAC128SHA224AuthProtocol
    "sha256": _Auth("sha256", 24),  # usmHMAC192SHA256AuthProtocol
    "sha384": _Auth("sha384", 32),  # usmHMAC256SHA384AuthProtocol
    "sha512": _Auth("sha512", 48),  # usmHMAC384SHA512AuthProtocol
}
# Privacy protocol -> (key octets, how a key shorter than that is extended). AES-192 and
# AES-256 were never standardised for USM and two key extensions are in use: Reeder's
# (the 3DES draft's; Cisco, net-snmp's AES-192-C/AES-256-C, pysnmp's usmAesCfb256Protocol)
# and Blumenthal's (draft-blumenthal-aes-usm-04; net-snmp's default AES-192/AES-256).
# `aes192` and `aes256` have always meant Reeder's here and keep meaning it.
PRIV_PROTOCOLS: Mapping[str, tuple[int, str]] = {
    "aes": (16, "reeder"),  # RFC 3826: every digest is long enough, nothing to extend
    "aes192": (24, "reeder"),
    "aes192c": (24, "reeder"),
    "aes192-blumenthal": (24, "blumenthal"),
    "aes256": (32, "reeder"),
    "aes256c": (32, "reeder"),
    "aes256-blumenthal": (32, "blumenthal"),
}

_PASSWORD_OCTETS = 1 << 20  # RFC 3414 A.2: one megabyte of the repeated password
_MAX_SIZE = integer(65507)  # msgMaxSize: the largest UDP payload we take
_USM = b"\x02\x01\x03"  # msgSecurityModel 3, and msgVersion 3: the same octets
_AUTH_PRIV_REPORTABLE, _NO_AUTH_REPORTABLE = b"\x04\x01\x07", b"\x04\x01\x04"
_AUTH, _PRIV = 0x01, 0x02
_MAX_INT = 0x7FFFFFFF


def _stat(oid: str) -> bytes:
    return encode_oid(tuple(int(arc) for arc in oid.split(".")))


UNSUPPORTED_SEC_LEVELS = _stat("1.3.6.1.6.3.15.1.1.1.0")
NOT_IN_TIME_WINDOWS = _stat("1.3.6.1.6.3.15.1.1.2.0")
UNKNOWN_USER_NAMES = _stat("1.3.6.1.6.3.15.1.1.3.0")
UNKNOWN_ENGINE_IDS = _stat("1.3.6.1.6.3.15.1.1.4.0")
WRONG_DIGESTS = _stat("1.3.6.1.6.3.15.1.1.5.0")
DECRYPTION_ERRORS = _stat("1.3.6.1.6.3.15.1.1.6.0")

# report counter -> (name, what went wrong, what to check)
_REPORTS: Mapping[bytes, tuple[str, str, str]] = {
    UNSUPPORTED_SEC_LEVELS: (
        "usmStatsUnsupportedSecLevels",
        "the agent does not take authPriv requests from this user",
        "that the agent's user has both an auth and a priv protocol",
    ),
    NOT_IN_TIME_WINDOWS: (
        "usmStatsNotInTimeWindows",
        "the agent's engine time disagrees with ours even after resynchronising",
        "the agent's clock and engine boots",
    ),
    UNKNOWN_USER_NAMES: (
        "usmStatsUnknownUserNames",
        "the agent knows no such user",
        "user, and that the agent has it",
    ),
    UNKNOWN_ENGINE_IDS: (
        "usmStatsUnknownEngineIDs",
        "the agent does not accept the engine ID it announced",
        "the agent's engine ID",
    ),
    WRONG_DIGESTS: (
        "usmStatsWrongDigests",
        "the agent rejected the request's digest",
        "auth_key and auth_protocol",
    ),
    DECRYPTION_ERRORS: (
        "usmStatsDecryptionErrors",
        "the agent could not decrypt the request",
        "priv_key and priv_protocol",
    ),
}


class UsmError(Exception):
    """The agent refused our credentials (a report), or they cannot be working."""

    def __init__(self, problem: str, check: str) -> None:
        super().__init__(f"{problem}; check {check}")
        self.problem = problem  # what went wrong, naming the report's counter if any
        self.check = check  # which settings to look at


def _report_error(counter: bytes) -> UsmError:
    name, problem, check = _REPORTS.get(
        counter,
        (".".join(map(str, decode_oid(counter))), "the agent answered with a report", "its log"),
    )
    return UsmError(f"{problem} ({name})", check)


def _silent() -> UsmError:
    return UsmError(
        "the agent answers engine discovery but not one encrypted try, as net-snmp does "
        "with requests it cannot decrypt",
        "priv_key and priv_protocol",
    )


def _undecryptable() -> UsmError:
    return UsmError(
        "the agent's authenticated reply does not decrypt with our privacy key",
        "priv_key and priv_protocol",
    )


# -- keys ----------------------------------------------------------------------------------


def password_to_key(digest: str, password: bytes) -> bytes:
    """RFC 3414 A.2 step 1 (and RFC 7860 for SHA-2): the hash of 1 MiB of the password.

    About 2 ms of CPU for SHA-1: run it in a thread and keep the result.
    """
    if not password:
        raise ValueError("an empty password has no key")
    repeated = password * (_PASSWORD_OCTETS // len(password) + 1)
    return hashlib.new(digest, repeated[:_PASSWORD_OCTETS]).digest()


def localise_key(digest: str, key: bytes, engine_id: bytes) -> bytes:
    """RFC 3414 A.2 step 2: a key bound to one authoritative engine."""
    return hashlib.new(digest, key + engine_id + key).digest()


def priv_key(
    digest: str, master: bytes, engine_id: bytes, size: int, extension: str = "reeder"
) -> bytes:
    """The privacy key of `size` octets from the priv password's `master` key.

    A localised key shorter than the cipher's is extended. Reeder's way
    (draft-reeder-snmpv3-usm-3desede, net-snmp's AES-256-C): the localised key, as a
    password, gives the next piece, which costs another password_to_key: run it in a
    thread. Blumenthal's (draft-blumenthal-aes-usm-04, net-snmp's AES-256): the hash of
    the key so far is appended, one short hash.
    """
    key = localise_key(digest, master, engine_id)
    while len(key) < size:
        if extension == "blumenthal":
            key += hashlib.new(digest, key).digest()
        else:
            key += localise_key(digest, password_to_key(digest, key), engine_id)
    return key[:size]


@dataclass(frozen=True, slots=True)
class UsmUser:
    """A USM user at security level authPriv."""

    name: str
    auth_protocol: str  # a key of AUTH_PROTOCOLS
    auth_password: str = field(repr=False)
    priv_protocol: str  # a key of PRIV_PROTOCOLS
    priv_password: str = field(repr=False)

    def __post_init__(self) -> None:
        if self.auth_protocol not in AUTH_PROTOCOLS or self.priv_protocol not in PRIV_PROTOCOLS:
            raise ValueError(
                f"no fast path for auth {self.auth_protocol!r} with priv {self.priv_protocol!r}"
            )


@dataclass(frozen=True, slots=True)
class Session:
    """A user's localised keys for one engine, and the octets every message repeats."""

    engine_id: bytes
    user: bytes
    digest: str
    mac_length: int
    auth_key: bytes = field(repr=False)
    aes: algorithms.AES = field(repr=False)
    engine_field: bytes = field(repr=False)  # msgAuthoritativeEngineID, contextEngineID
    user_field: bytes = field(repr=False)  # msgUserName
    mac_field: bytes = field(repr=False)  # msgAuthenticationParameters, zeroed

    @classmethod
    def build(cls, user: UsmUser, engine_id: bytes, auth_key: bytes, priv: bytes) -> Session:
        auth = AUTH_PROTOCOLS[user.auth_protocol]
        name = user.name.encode()
        return cls(
            engine_id=engine_id,
            user=name,
            digest=auth.digest,
            mac_length=auth.mac_length,
            auth_key=auth_key,
            aes=algorithms.AES(priv),
            engine_field=tlv(OCTETS, engine_id),
            user_field=tlv(OCTETS, name),
            mac_field=tlv(OCTETS, bytes(auth.mac_length)),
        )

    def mac(self, message: bytes) -> bytes:
        """The HMAC of a message whose msgAuthenticationParameters are zeroed."""
        return hmac.digest(self.auth_key, message, self.digest)[: self.mac_length]


# -- messages ------------------------------------------------------------------------------


def encode_discovery(msg_id: int) -> bytes:
    """An empty noAuthNoPriv GetRequest with an empty engine ID: asks for a report."""
    security = tlv(SEQUENCE, b"\x04\x00\x02\x01\x00\x02\x01\x00\x04\x00\x04\x00\x04\x00")
    scoped = tlv(SEQUENCE, b"\x04\x00\x04\x00" + encode_pdu(GET_REQUEST, msg_id, ()))
    head = tlv(SEQUENCE, integer(msg_id) + _MAX_SIZE + _NO_AUTH_REPORTABLE + _USM)
    return tlv(SEQUENCE, _USM + head + tlv(OCTETS, security) + scoped)


def encode_message(
    session: Session,
    boots: int,
    engine_time: int,
    msg_id: int,
    salt: bytes,
    pdu: bytes,
) -> bytes:
    """An authPriv message carrying `pdu` (for a request, `encode_pdu(GET_REQUEST, ...)`)."""
    scoped = tlv(SEQUENCE, session.engine_field + b"\x04\x00" + pdu)  # contextName ""
    encryptor = Cipher(session.aes, CFB(_iv(boots, engine_time, salt))).encryptor()
    data = tlv(OCTETS, encryptor.update(scoped) + encryptor.finalize())
    salt_field = tlv(OCTETS, salt)
    security = tlv(
        SEQUENCE,
        session.engine_field
        + integer(boots)
        + integer(engine_time)
        + session.user_field
        + session.mac_field
        + salt_field,
    )
    head = tlv(SEQUENCE, integer(msg_id) + _MAX_SIZE + _AUTH_PRIV_REPORTABLE + _USM)
    message = bytearray(tlv(SEQUENCE, _USM + head + tlv(OCTETS, security) + data))
    # The MAC covers the whole message with its own field zeroed, and that field sits
    # right before the salt and the encrypted data.
    end = len(message) - len(data) - len(salt_field)
    message[end - session.mac_length : end] = session.mac(bytes(message))
    return bytes(message)


def encode_get(
    session: Session,
    boots: int,
    engine_time: int,
    msg_id: int,
    salt: bytes,
    varbinds: Sequence[bytes],
) -> bytes:
    """An authPriv GetRequest from `null_varbind` encodings; request-id = msgID."""
    return encode_message(
        session, boots, engine_time, msg_id, salt, encode_pdu(GET_REQUEST, msg_id, varbinds)
    )


def _iv(boots: int, engine_time: int, salt: bytes) -> bytes:
    return boots.to_bytes(4, "big") + engine_time.to_bytes(4, "big") + salt  # RFC 3826 3.1.2.1


@dataclass(frozen=True, slots=True)
class _Envelope:
    """The clear-text parts of a v3 message: believe them only once the digest checks."""

    flags: int
    engine_id: bytes
    boots: int
    engine_time: int
    user: bytes
    mac_at: tuple[int, int]  # where msgAuthenticationParameters' content lies
    salt: bytes
    data_at: int  # msgData: a ScopedPDU, or an OCTET STRING holding one encrypted


def _envelope(data: bytes) -> _Envelope:
    at, end = expect(data, 0, SEQUENCE)
    if end != len(data):
        raise ValueError("trailing octets")
    version, at = read_int(data, at)
    if version != 3:
        raise ValueError(f"not SNMPv3 (version field {version})")
    at, head_end = expect(data, at, SEQUENCE)
    _msg_id, at = read_int(data, at)
    _max_size, at = read_int(data, at)
    flags_start, at = expect(data, at, OCTETS)
    if at - flags_start != 1:
        raise ValueError("msgFlags is not one octet")
    flags = data[flags_start]
    model, at = read_int(data, at)
    if model != 3:
        raise ValueError(f"security model {model}, not USM")
    at, security_end = expect(data, head_end, OCTETS)
    at, _ = expect(data, at, SEQUENCE)
    e_start, at = expect(data, at, OCTETS)
    engine_id = data[e_start:at]
    boots, at = read_int(data, at)
    engine_time, at = read_int(data, at)
    if not (0 <= boots <= _MAX_INT and 0 <= engine_time <= _MAX_INT):
        raise ValueError("engine boots or time out of range")  # RFC 3414 2.2.1
    u_start, at = expect(data, at, OCTETS)
    user = data[u_start:at]
    m_start, m_end = expect(data, at, OCTETS)
    s_start, at = expect(data, m_end, OCTETS)
    salt = data[s_start:at]
    return _Envelope(
        flags, engine_id, boots, engine_time, user, (m_start, m_end), salt, security_end
    )


def _scoped_pdu(data: bytes, at: int) -> tuple[int, int, Response]:
    at, _ = expect(data, at, SEQUENCE)
    _, at = expect(data, at, OCTETS)  # contextEngineID
    _, at = expect(data, at, OCTETS)  # contextName
    return decode_pdu(data, at)


def decode_discovery(data: bytes) -> tuple[bytes, int, int]:
    """(engine ID, boots, time) from the report answering `encode_discovery`."""
    envelope = _envelope(data)
    if envelope.flags & (_AUTH | _PRIV) or not envelope.engine_id:
        raise ValueError("not a discovery report")
    tag, _, _ = _scoped_pdu(data, envelope.data_at)
    if tag != REPORT:
        raise ValueError(f"discovery answered by PDU 0x{tag:02x}, not a report")
    return envelope.engine_id, envelope.boots, envelope.engine_time


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply that passed every check: authenticated unless it is a noAuth report."""

    response: Response
    report: bytes | None  # a report's counter OID (content bytes); None for a Response
    authenticated: bool
    boots: int
    engine_time: int


def decode_reply(session: Session, request_id: int, data: bytes) -> Reply | UsmError:
    """What an agent's answer to our request `request_id` means.

    Raises ValueError for anything that is not a genuine answer (wrong digest, another
    user or engine, an unauthenticated Response): the caller drops it and keeps waiting.
    """
    envelope = _envelope(data)
    authenticated = bool(envelope.flags & _AUTH)
    if authenticated:
        if envelope.engine_id != session.engine_id or envelope.user != session.user:
            raise ValueError("another engine or user")
        start, end = envelope.mac_at
        if end - start != session.mac_length:
            raise ValueError("digest of the wrong length")
        expected = session.mac(data[:start] + bytes(end - start) + data[end:])
        if not hmac.compare_digest(expected, data[start:end]):
            raise ValueError("wrong digest")
    if envelope.flags & _PRIV:
        if not authenticated:
            raise ValueError("privacy without authentication")
        c_start, c_end = expect(data, envelope.data_at, OCTETS)
        if len(envelope.salt) != 8:
            return _undecryptable()
        iv = _iv(envelope.boots, envelope.engine_time, envelope.salt)
        decryptor = Cipher(session.aes, CFB(iv)).decryptor()
        plain = decryptor.update(data[c_start:c_end]) + decryptor.finalize()
        try:
            tag, pdu_request_id, response = _scoped_pdu(plain, 0)
        except ValueError:
            return _undecryptable()  # authentic, so the agent's, yet not readable
    else:
        tag, pdu_request_id, response = _scoped_pdu(data, envelope.data_at)
    if tag == RESPONSE:
        # We asked authPriv: an answer at a lower level is not the agent's (RFC 3412 7.2).
        if envelope.flags & (_AUTH | _PRIV) != _AUTH | _PRIV:
            raise ValueError("a Response not protected as the request was")
        if pdu_request_id != request_id:
            raise ValueError("a Response to another request")
        report = None
    elif tag == REPORT:
        if not response.varbinds:
            raise ValueError("a report naming no counter")
        report = response.varbinds[0][0]
    else:
        raise ValueError(f"unexpected PDU 0x{tag:02x}")
    return Reply(response, report, authenticated, envelope.boots, envelope.engine_time)


# -- the client ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Engine:
    """An agent's snmpEngineID, and its boots and time as last learnt, on our clock."""

    engine_id: bytes
    boots: int
    engine_time: int
    at: float  # our monotonic clock when the agent said engine_time

    def time_at(self, now: float) -> int:
        return min(_MAX_INT, max(0, self.engine_time + int(now - self.at)))


@dataclass(frozen=True, slots=True)
class _Request:
    address: tuple[Any, ...]
    user: UsmUser | None  # None: a discovery only
    varbinds: Sequence[bytes]
    timeout_s: float
    retries: int
    deadline: float  # the event loop's clock: every exchange for the request ends by then


class V3Client(DatagramClient):
    """SNMPv3 authPriv GETs over one UDP socket per address family."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._engines: dict[tuple[Any, ...], Engine] = {}
        # (address, user) -> the engine ID that last answered these credentials
        self._verified: dict[tuple[tuple[Any, ...], UsmUser], bytes] = {}
        self._suspect: set[tuple[Any, ...]] = set()  # peers whose last request timed out
        self._sessions: dict[tuple[UsmUser, bytes], Session] = {}
        self._master_keys: dict[tuple[str, str], asyncio.Future[bytes]] = {}
        self._salts = itertools.count(secrets.randbits(64))
        self.discoveries = 0
        self.resyncs = 0

    async def get(
        self,
        address: tuple[Any, ...],
        user: UsmUser,
        varbinds: Sequence[bytes],
        *,
        timeout_s: float,
        retries: int,
    ) -> Response:
        """One authPriv GetRequest to a resolved `address`.

        Everything it sends (discoveries, resends after a report) fits in the time of the
        request's own tries, `timeout_s` x (`retries` + 1). Raises SnmpTimeout when the
        agent does not answer and UsmError when it refuses the credentials.
        """
        peer = address[:2]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s * (retries + 1)
        request = _Request(address, user, varbinds, timeout_s, retries, deadline)
        engine = self._engines.get(peer)
        discovered = False
        if engine is None or peer in self._suspect or not self._answered(peer, user, engine):
            # Unanswered credentials: discover first, to tell a silent agent from a dead
            # one. A peer that went silent: its engine may have changed meanwhile.
            reason = "silent" if engine is not None and peer in self._suspect else "new"
            engine = await self._discover(request, reason)
            discovered = True
        reply = await self._ask(request, engine)
        if reply.report == NOT_IN_TIME_WINDOWS and reply.authenticated:
            engine = self._resync(peer, engine, reply)
            reply = await self._ask(request, engine)
        if reply.report is not None and not discovered:
            # Any report about credentials that engine took before: the device may have a
            # new engine ID (HA failover, a replaced box, an agent that lost its state).
            # net-snmp says usmStatsUnknownEngineIDs, pysnmp's agents usmStatsUnknownUserNames.
            engine = await self._discover(request, _REPORTS.get(reply.report, ("report",))[0])
            reply = await self._ask(request, engine)
            if reply.report == NOT_IN_TIME_WINDOWS and reply.authenticated:
                engine = self._resync(peer, engine, reply)
                reply = await self._ask(request, engine)
        if reply.report is not None:
            raise _report_error(reply.report)
        self._verified[(peer, user)] = engine.engine_id
        # Follow the agent's clock (RFC 3414 3.2 step 7b). Its timeliness check, which
        # drops replies older than our notion, is left out: a reply must carry the msgID
        # of a request still outstanding, which an old one cannot, and the check would
        # only lock us out of an agent whose boots counter went back.
        now = self._clock()
        if reply.boots != engine.boots or abs(reply.engine_time - engine.time_at(now)) > 1:
            self._engines[peer] = Engine(engine.engine_id, reply.boots, reply.engine_time, now)
        return reply.response

    def _answered(self, peer: tuple[Any, ...], user: UsmUser, engine: Engine) -> bool:
        return self._verified.get((peer, user)) == engine.engine_id

    async def _ask(self, request: _Request, engine: Engine) -> Reply:
        peer, user = request.address[:2], request.user
        assert user is not None  # only discoveries go without
        fresh = not self._answered(peer, user, engine)
        session = await self._session(user, engine.engine_id)
        msg_id = self.next_id()
        salt = (next(self._salts) & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "big")
        engine_time = engine.time_at(self._clock())
        message = encode_get(session, engine.boots, engine_time, msg_id, salt, request.varbinds)
        try:
            reply = await self.exchange(
                request.address,
                msg_id,
                message,
                functools.partial(decode_reply, session, msg_id),
                timeout_s=request.timeout_s,
                retries=request.retries,
                deadline=request.deadline,
            )
        except SnmpTimeout:
            if fresh:  # it answered the discovery a moment ago
                raise _silent() from None
            # Once silent, the next request starts with a discovery: a device back with
            # another engine ID may drop what is addressed to the old one without a report.
            self._suspect.add(peer)
            raise
        if isinstance(reply, UsmError):
            raise reply
        return reply

    async def discover(self, address: tuple[Any, ...], *, timeout_s: float, retries: int) -> bytes:
        """The agent's snmpEngineID, asked now; raises SnmpTimeout. For requests that
        another SNMP engine (pysnmp) sends: it tells whether that engine's notion is stale."""
        deadline = asyncio.get_running_loop().time() + timeout_s * (retries + 1)
        request = _Request(address, None, (), timeout_s, retries, deadline)
        return (await self._discover(request, "asked")).engine_id

    async def _discover(self, request: _Request, reason: str) -> Engine:
        peer = request.address[:2]
        msg_id = self.next_id()
        try:
            engine_id, boots, engine_time = await self.exchange(
                request.address,
                msg_id,
                encode_discovery(msg_id),
                decode_discovery,
                timeout_s=request.timeout_s,
                retries=request.retries,
                deadline=request.deadline,
            )
        except SnmpTimeout:
            if peer in self._engines:
                self._suspect.add(peer)
            raise
        engine = Engine(engine_id, boots, engine_time, self._clock())
        self.discoveries += 1
        previous = self._engines.get(peer)
        self._engines[peer] = engine
        self._suspect.discard(peer)
        if reason == "asked":
            pass  # for another SNMP engine, which says what it does with the answer
        elif previous is None:
            log.info(
                "snmp v3 engine discovered peer=%s engine_id=%s boots=%d",
                peer[0],
                engine_id.hex(),
                boots,
            )
        else:
            log.info(
                "snmp v3 engine discovered again peer=%s reason=%s engine_id=%s was=%s boots=%d",
                peer[0],
                reason,
                engine_id.hex(),
                previous.engine_id.hex(),
                boots,
            )
        return engine

    def _resync(self, peer: tuple[Any, ...], engine: Engine, reply: Reply) -> Engine:
        now = self._clock()
        log.info(
            "snmp v3 engine time resynchronised peer=%s boots=%d was_boots=%d drift_s=%d",
            peer[0],
            reply.boots,
            engine.boots,
            engine.time_at(now) - reply.engine_time,
        )
        self.resyncs += 1
        synced = Engine(engine.engine_id, reply.boots, reply.engine_time, now)
        self._engines[peer] = synced
        return synced

    async def _session(self, user: UsmUser, engine_id: bytes) -> Session:
        session = self._sessions.get((user, engine_id))
        if session is not None:
            return session
        digest = AUTH_PROTOCOLS[user.auth_protocol].digest
        auth_master = await self._master_key(digest, user.auth_password)
        priv_master = await self._master_key(digest, user.priv_password)
        size, extension = PRIV_PROTOCOLS[user.priv_protocol]
        if hashlib.new(digest).digest_size < size and extension == "reeder":
            priv = await asyncio.to_thread(
                priv_key, digest, priv_master, engine_id, size, extension
            )
        else:
            priv = priv_key(digest, priv_master, engine_id, size, extension)  # short hashes
        auth = localise_key(digest, auth_master, engine_id)
        session = Session.build(user, engine_id, auth, priv)
        self._sessions[(user, engine_id)] = session
        return session

    async def _master_key(self, digest: str, password: str) -> bytes:
        future = self._master_keys.get((digest, password))
        if future is None:
            # One computation per password, however many devices ask for it at once.
            future = asyncio.ensure_future(
                asyncio.to_thread(password_to_key, digest, password.encode())
            )
            self._master_keys[(digest, password)] = future
        return await asyncio.shield(future)

    def close(self) -> None:
        super().close()
        for future in self._master_keys.values():
            future.cancel()
        self._master_keys.clear()
        self._sessions.clear()
        self._engines.clear()
        self._verified.clear()
        self._suspect.clear()
