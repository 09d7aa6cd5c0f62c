"""Links and the probe specs that measure them (ICMP, SNMP, HTTP, TCP), with thresholds.

Each probe kind is one model, discriminated by `kind`; `PROBE_KINDS` names them. Nothing
here probes anything.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from kernel.config.fields import Duration, HostPort, Id, _rule, _split_host_port, _Strict
from kernel.durations import format_duration
from kernel.formatting import count_of, excerpt


class Thresholds(_Strict):
    """Above these a reachable link is shown amber (degraded) but still counts as available.

    `loss_pct` and `rtt_ms` are about the network (ICMP echoes, TCP handshakes);
    `response_ms` is about HTTP probes, whose rtt is the whole response (see
    RESPONSE_TIME_KINDS), and an HTTP probe's own `response_ms` wins over it."""

    loss_pct: float | None = Field(default=None, gt=0, le=100)
    rtt_ms: float | None = Field(default=None, gt=0)
    response_ms: float | None = Field(default=None, gt=0)


class _ProbeBase(_Strict):
    id: Id
    interval: Duration = timedelta(seconds=30)
    timeout: Duration = timedelta(seconds=2)
    confirm: int = Field(default=2, ge=1, le=100)
    stale_after: Duration | None = None  # None: 3 x interval
    availability: bool = True  # counts toward the link's availability
    # The site it is measured from; unset: this monitor's own (`site.id`). A link with a
    # `vantage` sets it on each of its measurements (kernel.config.sites).
    measured_from: Id | None = None

    @property
    def stale_after_effective(self) -> timedelta:
        return self.stale_after if self.stale_after is not None else 3 * self.interval

    def max_run_time(self) -> timedelta:
        """The longest one run may take; the scheduler's deadline for it."""
        return self.timeout

    @_rule
    def _fits_interval(self) -> None:
        busy = self.max_run_time()
        if busy >= self.interval:
            raise ValueError(
                f"a run takes up to {format_duration(busy)} (timeout"
                f"{self._busy_detail()}), which must be shorter than interval "
                f"{format_duration(self.interval)}; lower the timeout or raise the interval"
            )
        if self.stale_after is not None and self.stale_after < self.interval:
            raise ValueError(
                f"stale_after {format_duration(self.stale_after)} is shorter than interval "
                f"{format_duration(self.interval)}; every gap between samples would be unknown"
            )

    def _busy_detail(self) -> str:
        return ""


class IcmpProbe(_ProbeBase):
    kind: Literal["icmp"]
    host: str = Field(min_length=1)
    count: int = Field(default=5, ge=1, le=100)
    spacing: Duration = timedelta(milliseconds=200)

    def max_run_time(self) -> timedelta:
        return (self.count - 1) * self.spacing + self.timeout

    def _busy_detail(self) -> str:
        return f" plus {self.count - 1} x spacing {format_duration(self.spacing)}"


def _interface_name(value: str) -> str:
    # A blank name would match every interface that has none (most have no alias).
    if not value.strip():
        raise ValueError(
            f"{excerpt(value)} is blank and would match every interface without one; "
            "give the interface's name, or its index"
        )
    return value


InterfaceName = Annotated[str, AfterValidator(_interface_name)]


class SnmpInterface(_Strict):
    """Which interface to watch; exactly one of the four names."""

    index: int | None = Field(default=None, ge=1)
    name: InterfaceName | None = None
    descr: InterfaceName | None = None
    alias: InterfaceName | None = None  # ISPs put circuit ids here

    @_rule
    def _exactly_one(self) -> None:
        given = [k for k in ("index", "name", "descr", "alias") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"name the interface by exactly one of index, name, descr or alias "
                f"(got {', '.join(given) or 'none'})"
            )


class SnmpProbe(_ProbeBase):
    kind: Literal["snmp"]
    host: HostPort
    version: Literal["2c", "3"] = "2c"
    community: str | None = None
    user: str | None = None
    auth_protocol: Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"] = "sha"
    auth_key: str | None = None
    # aes192/aes256 extend the key as Cisco and net-snmp's AES-192-C/AES-256-C do (Reeder;
    # aes192c/aes256c say so explicitly); the -blumenthal ones as net-snmp's AES-192/AES-256.
    priv_protocol: Literal[
        "aes",
        "aes192",
        "aes192c",
        "aes192-blumenthal",
        "aes256",
        "aes256c",
        "aes256-blumenthal",
        "des",
    ] = "aes"
    priv_key: str | None = None
    interface: SnmpInterface | None = None
    retries: int = Field(default=1, ge=0, le=5)

    @property
    def port(self) -> int:
        return _split_host_port(self.host, 161)[1]

    @_rule
    def _credentials(self) -> None:
        if self.version == "2c" and not self.community:
            raise ValueError("version 2c needs a community, e.g. community: ${SNMP_COMMUNITY}")
        if self.version == "3" and not (self.user and self.auth_key and self.priv_key):
            raise ValueError("version 3 needs user, auth_key and priv_key (authPriv)")

    def max_run_time(self) -> timedelta:
        return self.timeout * (self.retries + 1)

    def _busy_detail(self) -> str:
        return f" x {count_of(self.retries + 1, 'try', 'tries')}"


class HttpProbe(_ProbeBase):
    kind: Literal["http"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")]
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(
        default_factory=lambda: list(range(200, 400))
    )
    body_contains: str | None = None
    body_regex: str | None = None
    follow_redirects: bool = True
    timeout: Duration = timedelta(seconds=5)
    # Off only for lab devices with self-signed certificates; the expiry is still read.
    tls_verify: bool = True
    # Trust only the CA certificate(s) in this PEM file instead of the system's store.
    ca_file: Path | None = None
    # A certificate with fewer days left than this makes a good result degraded; 0: never.
    cert_warn_days: int = Field(default=14, ge=0, le=3650)
    # A response (its total time) this slow or slower is degraded; wins over the link's
    # thresholds.response_ms. Slower than `timeout` is down, as always.
    response_ms: float | None = Field(default=None, gt=0)

    @_rule
    def _regex(self) -> None:
        if self.body_regex is not None:
            try:
                re.compile(self.body_regex)
            except re.error as exc:
                raise ValueError(
                    f"body_regex {excerpt(self.body_regex)} is not a regex: {exc}"
                ) from None
            except RecursionError:  # Python's regex parser recurses per group
                raise ValueError(
                    f"body_regex {excerpt(self.body_regex)} nests its groups too deeply; "
                    "simplify it"
                ) from None

    @_rule
    def _body_needs_a_body(self) -> None:
        if self.method == "HEAD" and (self.body_contains or self.body_regex):
            raise ValueError(
                "a HEAD response has no body to check; use method GET, or drop "
                "body_contains and body_regex"
            )

    @_rule
    def _response_within_timeout(self) -> None:
        if self.response_ms is not None:
            _check_response_ms("response_ms", self.response_ms, self)

    @_rule
    def _tls(self) -> None:
        if self.ca_file is None:
            return
        if not self.tls_verify:
            raise ValueError(
                f"ca_file {excerpt(str(self.ca_file))} is set but tls_verify is false, so it "
                "would be ignored; drop one of them"
            )
        try:
            is_file = self.ca_file.is_file()
        except OSError as exc:  # a name too long, say
            raise ValueError(
                f"ca_file {excerpt(str(self.ca_file))} cannot be read: {exc.strerror or exc}"
            ) from None
        if not is_file:
            raise ValueError(
                f"ca_file {excerpt(str(self.ca_file))} is not a file; give the path of a PEM file "
                "with the CA certificate(s) to trust"
            )


class TcpProbe(_ProbeBase):
    kind: Literal["tcp"]
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)


AnyProbe = IcmpProbe | SnmpProbe | HttpProbe | TcpProbe
ProbeSpec = Annotated[AnyProbe, Field(discriminator="kind")]
PROBE_KINDS = ("icmp", "snmp", "http", "tcp")
# Kinds whose rtt_ms is a response time (request to the end of the body), not a network
# round trip: a link's rtt_ms threshold and latency objectives leave them out.
RESPONSE_TIME_KINDS = frozenset({"http"})


def _check_response_ms(key: str, response_ms: float, probe: HttpProbe) -> None:
    if response_ms * 1000 >= probe.timeout / timedelta(microseconds=1):
        raise ValueError(
            f"{key} {response_ms:g} is not below the timeout of probe {probe.id!r} "
            f"({format_duration(probe.timeout)}): a response that slow is down (timeout), "
            f"never degraded; use a value under {probe.timeout / timedelta(milliseconds=1):g}"
        )


class Vantage(_Strict):
    """The sites that measure a link, and how many must see it down before it is down."""

    sites: list[Id] = Field(min_length=1, max_length=16)
    quorum: int = Field(default=1, ge=1, le=16)

    @_rule
    def _quorum(self) -> None:
        repeated = sorted({s for s in self.sites if self.sites.count(s) > 1})
        if repeated:
            raise ValueError(f"sites must be listed once each; repeated: {', '.join(repeated)}")
        if self.quorum > len(self.sites):
            raise ValueError(
                f"quorum {self.quorum} exceeds the {count_of(len(self.sites), 'site')} that "
                "measure the link, so it could never be down; lower the quorum or add sites"
            )


class Link(_Strict):
    id: Id
    customer: Id
    description: str = ""
    probes: list[ProbeSpec] = Field(min_length=1)
    thresholds: Thresholds = Thresholds()
    vantage: Vantage | None = None  # unset: measured from this monitor's site alone
    # The device or PoP the link hangs off (an aggregation router, a PoP's switch), as
    # operations name it. Links with the same upstream that go down within a minute of
    # each other reach operations as one grouped message (notify.grouping). A vantage
    # site is where a link is measured from, not what it runs through, so it cannot say
    # which links share a failure.
    upstream: Id | None = None

    @property
    def quorum(self) -> int:
        """How many sites must see a probe's target down for the probe to be down."""
        return 1 if self.vantage is None else self.vantage.quorum

    def response_ms(self, probe: HttpProbe) -> float | None:
        """The response time from which `probe`'s results are degraded, if any."""
        return probe.response_ms if probe.response_ms is not None else self.thresholds.response_ms

    @_rule
    def _response_threshold_applies(self) -> None:
        limit = self.thresholds.response_ms
        if limit is None:
            return
        http = [p for p in self.probes if isinstance(p, HttpProbe)]
        if not http:
            raise ValueError(
                f"thresholds.response_ms {limit:g} applies to http probes and this link has "
                "none; drop it, or add an http probe"
            )
        for probe in http:
            if probe.response_ms is None:
                _check_response_ms("thresholds.response_ms", limit, probe)
