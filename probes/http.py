"""HTTP(S) probe: one request on a fresh connection, checked and timed phase by phase.

Every run opens its own connection (no keep-alive, no connection pool, no DNS cache), so
the connect and TLS times are real each time: no phase is ever that of a reused
connection. Phases are milestones in ms since the run started, as curl reports them
(``time_namelookup``, ``time_connect``, ``time_appconnect``, ``time_redirect``,
``time_starttransfer``, ``time_total``):

- ``dns``: the name resolved (absent for an IP address);
- ``connect``: the TCP connection made;
- ``tls``: the TLS handshake done (absent for http://);
- ``redirect``: the last redirect answered, when redirects were followed; the final
  request, on a new connection of its own, starts here;
- ``first_byte``: the status line and headers of the final response read;
- ``total``: the response read (its body, at most BODY_LIMIT_BYTES, only when the status
  is an expected one).

With redirects, ``dns``/``connect``/``tls`` are the first request's, the ``redirects``
metric counts them, and the certificate is the last hop's. A phase that is absent did not
happen: either it does not apply (above) or the run ended before it (a timeout, a refused
connection). ``rtt_ms`` is ``total``, the response time a user of the site waits for, so
it is absent unless a response was read; the TCP handshake alone is ``connect - dns``.
The phases are also the sample's stored metrics, as ``dns_ms``, ``connect_ms``, ...,
``total_ms`` (the same milestones), next to ``redirects`` and ``cert_days_left``.

A target's failure is ``down`` with a short error; a certificate close to expiry makes a
good result ``degraded`` (and so does a slow response, by the thresholds the scheduler
applies); a problem of the monitor itself (unreadable ``ca_file``, out of sockets) is
``unknown``. It never reads more than BODY_LIMIT_BYTES of a body and never reuses a
connection.
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import ssl
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohappyeyeballs
import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler

from kernel.config import HttpProbe
from kernel.domain import Outcome, ProbeResult
from kernel.formatting import count_of
from probes.context import ProbeContext, Resolver
from probes.faults import unresolved
from probes.tcp import (
    HAPPY_EYEBALLS_DELAY_S,
    Milestones,
    describe_connect_error,
    describe_timeout,
    dns_reason,
    is_ip_literal,
)

# Enough for any health page or status document; bounds memory and transfer per run.
BODY_LIMIT_BYTES = 1024 * 1024
MAX_REDIRECTS = 10
USER_AGENT = "linkwatch-probe/0.1"


async def probe_http(spec: HttpProbe, ctx: ProbeContext) -> ProbeResult:
    try:
        ssl_context = await _ssl_context(spec.tls_verify, spec.ca_file)
    except (OSError, ssl.SSLError) as exc:
        return ProbeResult(Outcome.UNKNOWN, error=f"ca_file {spec.ca_file}: {_reason(exc)}")

    clock = Milestones()
    resolver = _ResolverAdapter(ctx.resolver)
    connector = _TimedConnector(clock, resolver=resolver)
    tracing = aiohttp.TraceConfig()
    tracing.on_dns_resolvehost_end.append(_marker(clock, "dns", first_request=True))
    tracing.on_request_redirect.append(_marker(clock, "redirect", last=True))
    tracing.on_request_end.append(_marker(clock, "first_byte"))
    body = b""
    truncated = False
    try:
        async with (
            asyncio.timeout(spec.timeout.total_seconds()),
            aiohttp.ClientSession(
                connector=connector,
                trace_configs=[tracing],
                # The asyncio.timeout above is the one deadline; aiohttp's would race it.
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),
            ) as session,
            session.request(
                spec.method,
                spec.url,
                data=b"" if spec.method == "POST" else None,
                allow_redirects=spec.follow_redirects,
                max_redirects=MAX_REDIRECTS,
                ssl=ssl_context,
            ) as response,
        ):
            status, charset = response.status, response.charset
            redirects = len(response.history)
            if status in spec.expect_status:
                body, truncated = await _read_bounded(response.content, BODY_LIMIT_BYTES)
            # Before the connection is closed: closing is not part of the response time.
            clock.mark("total")
    except TimeoutError:
        stage = _stage(clock, spec.url)
        return _result(Outcome.DOWN, describe_timeout(spec.timeout, stage), clock, connector)
    except aiohttp.ClientError as exc:
        outcome, error = _describe_client_error(exc, resolver)
        return _result(outcome, error, clock, connector)

    def result(outcome: Outcome, error: str | None) -> ProbeResult:
        return _result(outcome, error, clock, connector, redirects=redirects)

    if status not in spec.expect_status:
        return result(Outcome.DOWN, f"status {status} (expected {_ranges(spec.expect_status)})")
    if spec.body_contains is not None or spec.body_regex is not None:
        text = _decode(body, charset)
        within = " in the first 1 MiB" if truncated else ""
        if spec.body_contains is not None and spec.body_contains not in text:
            return result(Outcome.DOWN, f"body does not contain {spec.body_contains!r}{within}")
        if spec.body_regex is not None and not re.search(spec.body_regex, text):
            return result(Outcome.DOWN, f"body does not match {spec.body_regex!r}{within}")

    days_left = connector.cert_days_left()
    if days_left is not None and days_left < spec.cert_warn_days:
        return result(Outcome.DEGRADED, _expiry(days_left))
    return result(Outcome.UP, None)


# --- timing ------------------------------------------------------------------------------


class _TimedConnector(aiohttp.TCPConnector):
    """A one-use connector that times the TCP connect and the TLS handshake apart.

    aiohttp creates a connection in one step (connect, then handshake, inside one
    ``loop.create_connection``), so its trace hooks cannot tell the two apart. This
    replaces that one step with the same two aiohttp takes internally, with a clock
    between them, and keeps the peer certificate for its expiry date.
    """

    def __init__(self, clock: Milestones, resolver: AbstractResolver) -> None:
        super().__init__(
            resolver=resolver,
            use_dns_cache=False,
            force_close=True,  # no keep-alive: every run pays for its own connect and TLS
            happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S,
        )
        self._clock = clock
        self.peer_cert: bytes | None = None

    async def _wrap_create_connection(
        self,
        *args: Any,
        addr_infos: list[aiohappyeyeballs.AddrInfoType],
        req: aiohttp.ClientRequest,
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp calls it with this signature
        client_error: type[Exception] = aiohttp.ClientConnectorError,
        **kwargs: Any,
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        loop = asyncio.get_running_loop()
        try:
            sock = await aiohappyeyeballs.start_connection(
                addr_infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S, loop=loop
            )
            _mark_first_request(self._clock, "connect")
            # On a connected socket this is only the TLS handshake (when ssl is given).
            transport, protocol = await loop.create_connection(*args, **kwargs, sock=sock)
        except ssl.CertificateError as exc:  # verification failed; also an SSLError
            raise aiohttp.ClientConnectorCertificateError(req.connection_key, exc) from exc
        except ssl.SSLError as exc:
            raise aiohttp.ClientConnectorSSLError(req.connection_key, exc) from exc
        except OSError as exc:
            raise client_error(req.connection_key, exc) from exc
        if kwargs.get("ssl"):
            _mark_first_request(self._clock, "tls")
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                self.peer_cert = ssl_object.getpeercert(binary_form=True)
        assert isinstance(protocol, ResponseHandler)
        return transport, protocol

    def cert_days_left(self) -> float | None:
        if self.peer_cert is None:
            return None
        try:
            not_after = certificate_not_after(self.peer_cert)
        except ValueError:
            return None  # a certificate we cannot parse; the handshake accepted it
        return (not_after - datetime.now(UTC)).total_seconds() / 86400.0


def _mark_first_request(clock: Milestones, name: str) -> None:
    """Mark a connection phase of the first request only: after a redirect, the final
    request's own lookup, connect and handshake lie between ``redirect`` and
    ``first_byte``, and marking them under the first request's names would mix hops."""
    if "redirect" not in clock.marks:
        clock.mark(name)


def _marker(
    clock: Milestones, name: str, *, first_request: bool = False, last: bool = False
) -> Any:
    """A trace hook marking `name` at its first occurrence (of the first request only,
    with `first_request`), or with `last` at its latest."""

    async def mark(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        if first_request:
            _mark_first_request(clock, name)
            return
        if last:
            clock.marks.pop(name, None)  # re-inserted: milestones stay in time order
        clock.mark(name)

    return mark


def _stage(clock: Milestones, url: str) -> str:
    """Where a run that timed out was stuck."""
    parsed = yarl.URL(url)
    if "first_byte" in clock.marks:
        return "reading body"
    if "redirect" in clock.marks:
        return "following a redirect"
    if "connect" not in clock.marks:
        named = parsed.host is not None and not is_ip_literal(parsed.host)
        return "dns" if named and "dns" not in clock.marks else "connect"
    if parsed.scheme == "https" and "tls" not in clock.marks:
        return "tls handshake"
    return "waiting for response"


class _ResolverAdapter(AbstractResolver):
    """The probe context's resolver in the shape aiohttp's connector asks for."""

    def __init__(self, resolve: Resolver) -> None:
        self._resolve = resolve
        self.found: dict[str, tuple[str, ...]] = {}  # each host's addresses, as resolved

    def addresses(self, host: str | None) -> tuple[str, ...]:
        """The addresses a connection to `host` went to: itself when it is one."""
        if host is None:
            return ()
        return (host,) if is_ip_literal(host) else self.found.get(host, ())

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results: list[ResolveResult] = []
        for address in await self._resolve(host):
            ip = address.partition("%")[0]  # aiohttp cannot carry a link-local scope id
            found = socket.AF_INET6 if ":" in ip else socket.AF_INET
            if family in (socket.AF_UNSPEC, found):
                results.append(
                    ResolveResult(
                        hostname=host,
                        host=ip,
                        port=port,
                        family=found,
                        proto=0,
                        flags=socket.AI_NUMERICHOST,
                    )
                )
        if not results:
            raise OSError(f"no address for {host}")
        self.found[host] = tuple(r["host"] for r in results)
        return results

    async def close(self) -> None:
        """The context owns the resolver; nothing to release here."""


# --- results -----------------------------------------------------------------------------


def _result(
    outcome: Outcome,
    error: str | None,
    clock: Milestones,
    connector: _TimedConnector,
    *,
    redirects: int = 0,
) -> ProbeResult:
    # Rounded to the microsecond: finer is noise, and each digit is stored with the sample.
    phases = {name: round(at, 3) for name, at in clock.marks.items()}
    metrics = {f"{name}_ms": at for name, at in phases.items()}
    if redirects:
        metrics["redirects"] = float(redirects)
    days_left = connector.cert_days_left()
    if days_left is not None:
        metrics["cert_days_left"] = round(days_left, 3)
    return ProbeResult(
        outcome, rtt_ms=phases.get("total"), error=error, phases_ms=phases, metrics=metrics
    )


def _describe_client_error(
    exc: aiohttp.ClientError, resolver: _ResolverAdapter
) -> tuple[Outcome, str]:
    # Order matters: the certificate, SSL and DNS errors are connector errors too.
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = exc.certificate_error
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Outcome.DOWN, f"tls: certificate verify failed: {cause.verify_message}"
        return Outcome.DOWN, f"tls: {_reason(cause)}"
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return Outcome.DOWN, f"tls: {_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        # The monitor could not resolve the name: no measurement (probes.faults).
        return Outcome.UNKNOWN, unresolved(exc.host, dns_reason(exc.os_error)).error or ""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return describe_connect_error(exc.os_error, resolver.addresses(exc.host))
    if isinstance(exc, aiohttp.TooManyRedirects):
        return Outcome.DOWN, "too many redirects"
    if isinstance(exc, aiohttp.RedirectClientError):
        return Outcome.DOWN, f"bad redirect to {exc}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Outcome.DOWN, "server closed the connection before responding"
    if isinstance(exc, aiohttp.ClientResponseError):
        return Outcome.DOWN, f"http: {exc.message}"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Outcome.DOWN, f"body: {exc}"
    if isinstance(exc, aiohttp.ClientOSError):
        return describe_connect_error(exc)
    return Outcome.DOWN, f"http: {type(exc).__name__}: {exc}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _ranges(codes: Iterable[int]) -> str:
    """``[200, 201, ..., 399, 418]`` as ``200-399, 418``."""
    spans: list[list[int]] = []
    for code in sorted(set(codes)):
        if spans and code == spans[-1][1] + 1:
            spans[-1][1] = code
        else:
            spans.append([code, code])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


def _expiry(days_left: float) -> str:
    if days_left < 0:
        return f"certificate expired {count_of(round(-days_left), 'day')} ago"
    if days_left < 1:
        return "certificate expires in less than a day"
    # Nearest whole day: a certificate made "-days 5" a moment ago expires in 5 days.
    return f"certificate expires in {count_of(round(days_left), 'day')}"


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


async def _read_bounded(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), not content.at_eof()


# --- TLS ---------------------------------------------------------------------------------


# Built once per process: loading the system's CA store takes tens of milliseconds.
_SYSTEM_SSL_CONTEXTS: dict[bool, ssl.SSLContext] = {}


async def _ssl_context(verify: bool, ca_file: Path | None) -> ssl.SSLContext:
    """The context for these settings, built (file I/O) in a thread on first use only.

    Shared contexts are safe: an SSLContext is read-only once built.
    """
    if ca_file is None:
        context = _SYSTEM_SSL_CONTEXTS.get(verify)
        if context is None:
            context = await asyncio.to_thread(_build_ssl_context, verify, None, 0)
            _SYSTEM_SSL_CONTEXTS[verify] = context
        return context
    # The file's mtime in the key picks up a replaced CA file without a restart.
    return await asyncio.to_thread(
        lambda: _build_ssl_context(verify, ca_file, ca_file.stat().st_mtime_ns)
    )


@functools.lru_cache(maxsize=64)
def _build_ssl_context(verify: bool, ca_file: Path | None, mtime_ns: int) -> ssl.SSLContext:
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    # With a cafile, only that file is trusted (the system store is not loaded).
    return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)


def certificate_not_after(der: bytes) -> datetime:
    """The ``notAfter`` of a DER X.509 certificate, read without a crypto library.

    The peer certificate is only available in DER when verification is off, and
    ``ssl`` parses it only when verification is on; this reads the one field needed.
    Raises ValueError on anything that is not a certificate.
    """
    _, body, _ = _der(der, 0, 0x30)  # Certificate
    _, tbs, tbs_end = _der(der, body, 0x30)  # TBSCertificate
    pos = tbs
    if der[pos] == 0xA0:  # [0] version, optional
        pos = _der(der, pos)[2]
    for _field in ("serialNumber", "signature", "issuer"):
        pos = _der(der, pos)[2]
    _, validity, _ = _der(der, pos, 0x30)
    not_before_end = _der(der, validity)[2]
    tag, start, end = _der(der, not_before_end)
    if end > tbs_end:
        raise ValueError("validity runs past the certificate")
    text = der[start:end].decode("ascii")
    if tag == 0x17:  # UTCTime, YYMMDDHHMMSSZ; RFC 5280: YY < 50 is 20YY
        year = int(text[:2])
        text = f"{2000 + year if year < 50 else 1900 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime, YYYYMMDDHHMMSSZ
        raise ValueError(f"notAfter has tag {tag:#x}, not a time")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)


def _der(data: bytes, pos: int, expect: int | None = None) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at `pos`."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    if expect is not None and tag != expect:
        raise ValueError(f"DER tag {tag:#x} at {pos}, expected {expect:#x}")
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, start, end
