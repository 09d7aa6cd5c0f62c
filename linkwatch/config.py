"""Configuration: YAML in, validated models out, every mistake reported at once.

The file is read into plain data by linkwatch.configfile (bounded in size, values, depth
and time; a duplicate key or a value no setting can take is a problem there). Loading
then goes in three passes over that data: ``${VAR}`` expansion from the environment,
field validation by the pydantic models (strict: unknown keys are errors), then the
cross-references between sections (a link's customer, a contract's links, ...).
All problems from all passes are collected and raised together as one `ConfigError`, each
naming its path, the YAML line, the bad value (cut short if long) and what is allowed.
One mistake never hides another: a rule across an item's fields (`_rule`) is judged
whenever the fields it reads are valid, and the contracts' terms whenever their own
section is. Whatever the file holds, loading raises nothing but `ConfigError`. Values
are bounded by what they mean (durations, amounts, percentages), so that nothing done
with a valid config later overflows or loses precision. This module never touches the
network or the database.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import cache
from pathlib import Path
from types import FunctionType
from typing import Annotated, Any, Literal, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from linkwatch.configfile import LIMITS, Deadline, Limits, read_config_text, read_yaml
from linkwatch.domain import EventKind, MaintenanceWindow, SampleTimes
from linkwatch.durations import format_duration, parse_duration
from linkwatch.errors import ConfigError, ConfigProblem
from linkwatch.formatting import EXCERPT_CHARS, count_of, excerpt
from linkwatch.money import MAX_AMOUNT, PERCENT_PLACES, minor_units

# --- field types -------------------------------------------------------------------------


def _to_duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float):  # bool is an int too
        raise ValueError(f"{excerpt(value)} has no unit; write it as e.g. {excerpt(value)}s")
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"{format_duration(value)} is not positive; use a duration above 0s")
    return value


Duration = Annotated[timedelta, BeforeValidator(_to_duration), AfterValidator(_positive)]


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError(f"{format_duration(value)} is negative; use 0s or more")
    return value


DurationOrZero = Annotated[timedelta, BeforeValidator(_to_duration), AfterValidator(_not_negative)]

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def _check_id(value: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise ValueError(
            f"{excerpt(value)} is not a valid id; use 1-63 lower-case letters, digits, '.',"
            " '_' or '-', starting with a letter or digit"
        )
    return value


Id = Annotated[str, AfterValidator(_check_id)]


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{excerpt(value)} is not a known time zone; use an IANA name such as "
            "Europe/Berlin or UTC"
        ) from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(
            f"{value.isoformat()} has no UTC offset; write it with one, e.g. "
            f"{value.isoformat()}+01:00 or {value.isoformat()}Z"
        )
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


def _check_host_port(value: str) -> str:
    _split_host_port(value, default_port=0)
    return value


def _split_host_port(value: str, default_port: int) -> tuple[str, int]:
    """Split ``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    host, port_text = value, ""
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (len(value) > end + 1 and value[end + 1] != ":"):
            raise ValueError(f"{excerpt(value)} is not host or host:port; write IPv6 as [::1]:161")
        host, port_text = value[1:end], value[end + 2 :]
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    if not host:
        raise ValueError(
            f"{excerpt(value)} has no host; write host or host:port, e.g. 127.0.0.1:161"
        )
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(
                f"port {excerpt(port_text)} in {excerpt(value)} is not a number from 1 to 65535"
            )
        return host, int(port_text)
    return host, default_port


HostPort = Annotated[str, AfterValidator(_check_host_port)]


def _blank_is_none(value: object) -> object:
    # `${VAR:-}` expands to "" when VAR is unset; that means "not configured".
    return None if isinstance(value, str) and not value.strip() else value


_RULES: set[Callable[[Any], None]] = set()
_Item = TypeVar("_Item", bound="_Strict")


def _rule(check: Callable[[_Item], None]) -> Callable[[_Item], None]:
    """Mark a method of a config model as a rule across its fields: it raises ValueError
    saying what is wrong and what to do. Unlike pydantic's after-validators, which stop at
    the first failure and never run when a field fails, every rule of an item is checked,
    also when another rule or a field of the same item fails, so that one mistake never
    hides another. A rule that reads a field which failed cannot be judged: it is skipped."""
    _RULES.add(check)
    return check


class _Strict(BaseModel):
    # No infinity or NaN: a threshold or limit of .inf would silently never apply.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="wrap")
    @classmethod
    def _check_rules(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        rules = _rules_of(cls)
        if not rules:
            return handler(data)
        try:
            item = handler(data)
        except ValidationError as exc:
            if not isinstance(data, Mapping):
                raise
            broken = _broken_rules(_valid_part(cls, data, exc), rules, partial=True)
            if not broken:
                raise
            raise _with_rule_errors(cls, exc, broken, data) from None
        broken = _broken_rules(item, rules, partial=False)
        if broken:
            raise _with_rule_errors(cls, None, broken, data)
        return item


@cache
def _rules_of(model: type[_Strict]) -> tuple[Callable[[Any], None], ...]:
    """The rules of `model` and its bases, in the order they are defined."""
    return tuple(
        member
        for klass in reversed(model.__mro__)
        for member in vars(klass).values()
        if isinstance(member, FunctionType) and member in _RULES
    )


@cache
def _field_adapter(model: type[_Strict], name: str) -> TypeAdapter[Any]:
    field = model.model_fields[name]
    # The field's own FieldInfo carries its constraints and validators.
    annotated: Any = Annotated[field.annotation, field]
    return TypeAdapter(annotated)


def _valid_part(model: type[_Strict], data: Mapping[str, Any], exc: ValidationError) -> _Strict:
    """An item of `model` holding only the fields of `data` that are valid (and defaults
    for those not given): reading a field that failed raises AttributeError."""
    failed: set[int | str] = {e["loc"][0] for e in exc.errors() if e["loc"]}
    values: dict[str, Any] = {}
    for name in model.model_fields:
        if name in failed or name not in data:
            continue
        try:
            values[name] = _field_adapter(model, name).validate_python(data[name])
        except ValidationError:
            failed.add(name)
    part = model.model_construct(**values)
    for key in failed:
        part.__dict__.pop(str(key), None)
    return part


def _broken_rules(
    item: _Strict, rules: Sequence[Callable[[Any], None]], *, partial: bool
) -> list[str]:
    broken = []
    for rule in rules:
        try:
            rule(item)
        except ValueError as exc:
            broken.append(str(exc))
        except AttributeError:
            if not partial:
                raise
    return broken


def _with_rule_errors(
    model: type[_Strict], exc: ValidationError | None, broken: list[str], data: Any
) -> ValidationError:
    """`exc`'s errors and one error per broken rule, on the item itself, as one error."""
    errors = [
        InitErrorDetails(type=e["type"], loc=e["loc"], input=e["input"], ctx=e.get("ctx") or {})
        for e in (exc.errors() if exc is not None else [])
    ]
    errors += [
        InitErrorDetails(
            type=PydanticCustomError("value_error", "{error}", {"error": message}),
            loc=(),
            input=data,
        )
        for message in broken
    ]
    try:
        return ValidationError.from_exception_data(model.__name__, errors)
    except (TypeError, ValueError, KeyError):
        # An error kind that cannot be rebuilt (none of ours): keep the field errors.
        if exc is None:
            raise
        return exc


# --- sections ----------------------------------------------------------------------------


class DatabaseConfig(_Strict):
    """Where samples are stored. No ``url`` means the embedded PostgreSQL under data_dir."""

    url: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    timescaledb: Literal["auto", "require", "off"] = "auto"
    retention: Duration = timedelta(days=395)  # 13 months: long enough for credit disputes
    compress_after: Duration = timedelta(days=7)
    chunk_interval: Duration | None = None  # None: sized from the probes' sample rate
    pool_min_size: int = Field(default=1, ge=1, le=100)
    pool_max_size: int = Field(default=10, ge=1, le=100)

    @_rule
    def _pool_sizes(self) -> None:
        if self.pool_max_size < self.pool_min_size:
            raise ValueError(
                f"pool_max_size {self.pool_max_size} is below pool_min_size "
                f"{self.pool_min_size}; make it at least as large"
            )


class CollectorConfig(_Strict):
    """How samples travel from probes to the database, and what holds them meanwhile."""

    queue_size: int = Field(default=10_000, ge=100, le=10_000_000)
    # Large batches only form under load (a batch waits at most batch_delay), and there
    # they keep COPY near its ceiling.
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    batch_delay: Duration = timedelta(seconds=1)
    # Samples are spooled to disk while the database is away; at this size the collector
    # stops taking new samples (the probes wait) rather than lose any already taken.
    spool_max_mb: int = Field(default=1024, ge=1, le=1_048_576)
    spool_warn_pct: int = Field(default=80, ge=1, le=100)
    # A write the database has not finished by then goes to the spool like a failed one,
    # so that a hung database never holds the probes up; queue_size must hold this long.
    write_timeout: Duration = timedelta(seconds=10)
    # Samples taken elsewhere (imports) are stored only with a time between this long
    # before now and clock_skew after it; a time outside is refused, naming the row.
    sample_horizon: Duration = timedelta(days=3660)
    clock_skew: Duration = timedelta(minutes=5)

    @property
    def sample_times(self) -> SampleTimes:
        return SampleTimes(horizon=self.sample_horizon, skew=self.clock_skew)


class KindConcurrency(_Strict):
    """Runs of one probe kind in flight at once. Each kind costs something else: an ICMP
    burst is a few entries in the shared engine, an HTTP or TCP run holds a socket (a file
    descriptor) for its whole duration, an SNMP run mostly waits for its device's shared
    request (those requests are bounded separately, by ``snmp_requests``). ICMP, unset,
    is sized from the engine: as many bursts as it carries at once at ``icmp_max_pps``."""

    icmp: int | None = Field(default=None, ge=1, le=1_000_000)
    snmp: int = Field(default=4096, ge=1, le=1_000_000)
    http: int = Field(default=256, ge=1, le=100_000)
    tcp: int = Field(default=256, ge=1, le=100_000)


class ProbingConfig(_Strict):
    """How hard the probes may work at once. The defaults carry 20,000 ICMP targets every
    30 s on one core; HTTP and TCP stay well inside a default limit of 1,024 open files."""

    # Runs in flight, every kind together; a kind's own limit above it changes nothing.
    # Unset: no bound beyond the kinds' own.
    concurrency: int | None = Field(default=None, ge=1, le=1_000_000)
    concurrency_per_kind: KindConcurrency = KindConcurrency()
    # Echoes per second over every ICMP target; 20,000 targets x 5 echoes / 30 s is 3,333.
    icmp_max_pps: int = Field(default=10_000, ge=1, le=1_000_000)
    snmp_requests: int = Field(default=128, ge=1, le=100_000)  # SNMP requests in flight
    snmp_requests_per_device: int = Field(default=2, ge=1, le=64)  # agents are small CPUs


def _check_network(value: str) -> str:
    try:
        ipaddress.ip_network(value)
    except ValueError:
        raise ValueError(
            f"{excerpt(value)} is not an IP address or network; write an address such as "
            "127.0.0.1 or ::1, or a network without host bits such as 127.0.0.0/8"
        ) from None
    return value


class PortalConfig(_Strict):
    listen: HostPort = "127.0.0.1:8080"
    secret_key: Annotated[
        Annotated[str, Field(min_length=32)] | None, BeforeValidator(_blank_is_none)
    ] = None
    session_ttl: Duration = timedelta(hours=12)
    refresh: Duration = timedelta(seconds=30)
    # Reached through a reverse proxy that terminates HTTPS: the portal then marks its
    # cookies Secure and sends HSTS although the proxy talks plain HTTP to it.
    behind_https_proxy: bool = False
    # Reverse proxies whose X-Forwarded-For is believed: the client's address (which
    # sign-in throttling counts by) is then the last one they added.
    trusted_proxies: list[Annotated[str, AfterValidator(_check_network)]] = []

    @property
    def host(self) -> str:
        return _split_host_port(self.listen, 8080)[0]

    @property
    def port(self) -> int:
        return _split_host_port(self.listen, 8080)[1]


_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


def _check_email(value: str) -> str:
    if not _EMAIL_RE.fullmatch(value):
        raise ValueError(f"{excerpt(value)} is not an e-mail address; write it as name@example.net")
    return value


Email = Annotated[str, AfterValidator(_check_email)]


def _check_template(value: str) -> str:
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    try:
        SandboxedEnvironment().parse(value)
    except TemplateSyntaxError as exc:
        raise ValueError(
            f"not a valid template: {exc.message} (line {exc.lineno}); "
            "write jinja2, e.g. {{ availability }}"
        ) from None
    return value


Template = Annotated[str, AfterValidator(_check_template)]


class SmtpSettings(_Strict):
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    # starttls: upgrade a plain connection (port 587); tls: TLS from the start (465).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    password: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    timeout: Duration = timedelta(seconds=30)
    ca_file: Path | None = None  # to trust a private CA; the system's CAs otherwise

    @_rule
    def _credentials(self) -> None:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")


class WebhookChannel(_Strict):
    """Each event as a JSON POST, signed with HMAC-SHA256 over the body."""

    id: Id
    kind: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")]
    secret: Annotated[str, Field(min_length=16)]
    timeout: Duration = timedelta(seconds=10)
    headers: dict[str, str] = Field(default_factory=dict)


class EmailChannel(_Strict):
    """Each event as an e-mail with plain-text and HTML parts."""

    id: Id
    kind: Literal["email"]
    smtp: SmtpSettings = SmtpSettings()
    sender: Email
    to: list[Email] = Field(min_length=1)


AnyChannel = WebhookChannel | EmailChannel
ChannelSpec = Annotated[AnyChannel, Field(discriminator="kind")]
CHANNEL_KINDS = ("webhook", "email")
# Names a route may list: an event kind, or a group of them.
EVENT_GROUPS: dict[str, tuple[EventKind, ...]] = {
    "all": tuple(k for k in EventKind if k is not EventKind.TEST),
    "link": (EventKind.LINK_DOWN, EventKind.LINK_RECOVERED),
    "maintenance": (
        EventKind.MAINTENANCE_ANNOUNCED,
        EventKind.MAINTENANCE_STARTED,
        EventKind.MAINTENANCE_FINISHED,
        EventKind.MAINTENANCE_CANCELLED,
    ),
}
EventName = Literal[
    "all",
    "link",
    "maintenance",
    "link-down",
    "link-recovered",
    "budget",
    "sla-breached",
    "maintenance-announced",
    "maintenance-started",
    "maintenance-finished",
    "maintenance-cancelled",
    "monitor-blind",
]


def _all_events() -> list[EventName]:
    return ["all"]


class Route(_Strict):
    """Which events go to a channel: one customer's (customer set), or everyone's and the
    monitor's own for operations (customer unset)."""

    id: Id
    channel: Id
    events: list[EventName] = Field(default_factory=_all_events, min_length=1)
    customer: Id | None = None
    to: list[Email] | None = None  # e-mail recipients instead of the channel's

    def kinds(self) -> frozenset[EventKind]:
        chosen = {
            kind
            for name in self.events
            for kind in (EVENT_GROUPS[name] if name in EVENT_GROUPS else (EventKind(name),))
        }
        if self.customer is not None:  # never the monitor's own events to a customer
            chosen = {kind for kind in chosen if kind.customer_facing}
        return frozenset(chosen)


class Flapping(_Strict):
    """A link with `outages` or more outages `within` this long is flapping: its next
    down messages wait `hold_down` instead, so a flapping link sends a few, not a storm."""

    outages: int = Field(default=3, ge=2, le=1000)
    within: Duration = timedelta(hours=1)
    hold_down: Duration = timedelta(minutes=15)


class NotificationsConfig(_Strict):
    channels: list[ChannelSpec] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    # A down message waits this long; an outage over sooner sends neither message.
    hold_down: DurationOrZero = timedelta(minutes=1)
    flapping: Flapping = Flapping()
    retries: int = Field(default=8, ge=0, le=100)  # after the first attempt
    retry_backoff: Duration = timedelta(seconds=30)  # doubled per attempt, at most 1 h
    evaluate_every: Duration = timedelta(minutes=1)  # budgets, breaches, maintenance
    unknown_after: Duration = timedelta(minutes=10)  # unmeasured this long: monitor-blind
    portal_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")] | None = None

    def channel(self, channel_id: str) -> AnyChannel:
        return next(c for c in self.channels if c.id == channel_id)


class Customer(_Strict):
    id: Id
    name: str = Field(min_length=1)
    timezone: TimeZoneName = "UTC"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


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


class Link(_Strict):
    id: Id
    customer: Id
    description: str = ""
    probes: list[ProbeSpec] = Field(min_length=1)
    thresholds: Thresholds = Thresholds()

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


Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=PERCENT_PLACES)]
PositivePercent = Annotated[Decimal, Field(gt=0, le=100, decimal_places=PERCENT_PLACES)]


def _amount(value: Decimal) -> Decimal:
    if value > MAX_AMOUNT:
        raise ValueError(
            f"{value} is more than any amount billed; use at most {MAX_AMOUNT:,} (in the "
            "currency, per window)"
        )
    return value


Amount = Annotated[Decimal, Field(ge=0), AfterValidator(_amount)]


class LedgerConfig(_Strict):
    """What the credit ledger asks a person to look at before a credit is approved."""

    # Windows measured for less of their time than this (percent) are flagged for review,
    # and approving one takes a note; 0 flags none.
    review_coverage_below: Percent = Decimal("90")


class CreditBand(_Strict):
    """Availability below `below` percent earns `credit` percent of the fee."""

    below: PositivePercent
    credit: Percent


class IncidentCredit(_Strict):
    """`count` or more outages of at least `min_duration` in a window earn `credit` %."""

    count: int = Field(ge=1, le=10_000)
    min_duration: Duration
    credit: Percent


class CreditTerms(_Strict):
    step: PositivePercent = Decimal("0.5")
    per_step: Percent = Decimal("0")
    rounding: Literal["ceil", "floor"] = "ceil"
    cap: Percent = Decimal("100")
    bands: list[CreditBand] = Field(default_factory=list)
    incidents: IncidentCredit | None = None


class LatencyObjective(_Strict):
    """Round-trip time over the window's available time, met when at or under the limit.
    Measured on the network's round trips (ICMP, TCP), not on HTTP response times."""

    p95_ms: float | None = Field(default=None, gt=0)
    mean_ms: float | None = Field(default=None, gt=0)
    credit: Percent = Decimal("0")  # earned when the objective is missed

    @_rule
    def _some_limit(self) -> None:
        if self.p95_ms is None and self.mean_ms is None:
            raise ValueError("give p95_ms, mean_ms or both")


class LossObjective(_Strict):
    """Mean packet loss over the window's available time, met when at or under max_pct."""

    max_pct: float = Field(ge=0, le=100)
    credit: Percent = Decimal("0")


class Terms(_Strict):
    """Terms a plan, a contract or a contract version may set. Unset fields come from the
    layer below: built-in defaults <- plan <- contract <- version in force."""

    target: PositivePercent | None = None  # 100: no down time allowed (a budget of 0)
    window: Literal["week", "month"] | None = None
    fee: Amount | None = None  # per window
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    credit: CreditTerms | None = None
    minimum_credit: Amount | None = None
    unknown: Literal["exclude", "count_as_up", "count_as_down"] | None = None
    maintenance_notice: Duration | None = None
    grace: Duration | None = None  # after a window ends, before its ledger row closes
    budget_warnings: list[Annotated[int, Field(gt=0, le=100)]] | None = None
    latency: LatencyObjective | None = None
    loss: LossObjective | None = None
    breach_notice: Template | None = None  # the customer's message when a window is missed
    # Coverage (percent) under which a window gets no automatic credit: a person reviews it.
    min_coverage: Percent | None = None


class ResolvedTerms(_Strict):
    """Every term set, as they apply to one window."""

    target: PositivePercent
    window: Literal["week", "month"] = "month"
    fee: Decimal = Decimal("0")
    currency: str = "EUR"
    credit: CreditTerms = CreditTerms()
    minimum_credit: Decimal = Decimal("0")
    unknown: Literal["exclude", "count_as_up", "count_as_down"] = "exclude"
    maintenance_notice: timedelta = timedelta(hours=72)
    grace: timedelta = timedelta(days=2)
    budget_warnings: list[int] = Field(default_factory=lambda: [50, 80, 100])
    latency: LatencyObjective | None = None
    loss: LossObjective | None = None
    breach_notice: str | None = None
    min_coverage: Decimal | None = None


class Plan(Terms):
    """A reusable SLA template that contracts name and override only where they differ."""

    id: Id


class ContractVersion(Terms):
    """Changed terms from `effective_from` on (until a later version)."""

    effective_from: AwareDatetime


class Contract(Terms):
    id: Id
    customer: Id
    links: list[Id] = Field(min_length=1)
    plan: Id | None = None
    # redundant: the links form one service, down only while all of them are down.
    group: Literal["none", "redundant"] = "none"
    effective_from: AwareDatetime | None = None  # the contract's start; None: always
    versions: list[ContractVersion] = Field(default_factory=list)

    def terms_at(self, moment: datetime, plans: Sequence[Plan]) -> ResolvedTerms | None:
        """The terms in force at `moment`, or None before the contract starts."""
        if self.effective_from is not None and moment < self.effective_from:
            return None
        layers: list[Terms] = [p for p in plans if p.id == self.plan]
        layers.append(self)
        in_force = sorted(
            (v for v in self.versions if v.effective_from <= moment), key=_effective_from
        )
        layers += in_force
        merged: dict[str, Any] = {}
        for layer in layers:
            _merge(merged, layer.model_dump(include=_TERM_FIELDS, exclude_unset=True))
        return ResolvedTerms.model_validate(merged)


_TERM_FIELDS = set(Terms.model_fields)


def _effective_from(version: ContractVersion) -> datetime:
    return version.effective_from


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """Field by field, nested sections too: a layer changes only what it sets."""
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


class Maintenance(_Strict):
    """A planned window; empty links and customers means it covers everything."""

    id: Id
    description: str = ""
    links: list[Id] = Field(default_factory=list)
    customers: list[Id] = Field(default_factory=list)
    start: AwareDatetime
    end: AwareDatetime
    announced_at: AwareDatetime

    def to_window(self) -> MaintenanceWindow:
        return MaintenanceWindow(
            id=self.id,
            starts_at=self.start,
            ends_at=self.end,
            announced_at=self.announced_at,
            description=self.description,
            link_ids=tuple(self.links),
            customer_ids=tuple(self.customers),
        )

    @_rule
    def _order(self) -> None:
        if self.end <= self.start:
            raise ValueError(
                f"end {self.end.isoformat()} is not after start {self.start.isoformat()}"
            )


class User(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
    role: Literal["customer", "ops", "billing", "admin"]
    customer: Id | None = None
    password_hash: Annotated[str, Field(pattern=r"^\$argon2id\$")]
    disabled: bool = False

    @_rule
    def _customer_role(self) -> None:
        if self.role == "customer" and self.customer is None:
            raise ValueError("role customer needs the customer this user belongs to")
        if self.role != "customer" and self.customer is not None:
            raise ValueError(f"role {self.role} sees every customer; remove customer")


class Config(_Strict):
    database: DatabaseConfig = DatabaseConfig()
    data_dir: Path = Path(".linkwatch")
    collector: CollectorConfig = CollectorConfig()
    probing: ProbingConfig = ProbingConfig()
    portal: PortalConfig = PortalConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    ledger: LedgerConfig = LedgerConfig()
    customers: list[Customer] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    plans: list[Plan] = Field(default_factory=list)
    contracts: list[Contract] = Field(default_factory=list)
    maintenance: list[Maintenance] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)

    def customer(self, customer_id: str) -> Customer:
        return next(c for c in self.customers if c.id == customer_id)

    def link(self, link_id: str) -> Link:
        return next(link for link in self.links if link.id == link_id)


# --- loading -----------------------------------------------------------------------------

_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
Path_ = tuple[str | int, ...]


def load_config(
    path: str | Path, environ: Mapping[str, str] | None = None, *, limits: Limits = LIMITS
) -> Config:
    """Read and validate a YAML config file; raise ConfigError listing every problem.
    Whatever the file holds, nothing else is raised, and `limits` bound what reading it
    may cost (see linkwatch.configfile)."""
    deadline = limits.deadline()
    text = read_config_text(path, limits)
    return parse_config(text, source=str(path), environ=environ, limits=limits, deadline=deadline)


def parse_config(
    text: str,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    *,
    limits: Limits = LIMITS,
    deadline: Deadline | None = None,
) -> Config:
    env = os.environ if environ is None else environ
    deadline = deadline or limits.deadline()
    document = read_yaml(text, source, limits, deadline)
    data = document.data
    if data is None or data == {}:
        problem = (
            "the file is empty (nothing but comments, or null): no links, no contracts; "
            "config/example.yaml shows every setting"
        )
        raise ConfigError([ConfigProblem("", problem, 1)], source)
    if not isinstance(data, dict):
        problem = f"the file must be a mapping of sections, got {_kind(data)}"
        raise ConfigError([ConfigProblem("", problem, 1)], source)

    problems: list[tuple[Path_, str]] = list(document.problems)
    unset: list[tuple[Path_, str]] = []
    data = _expand_env(data, (), env, unset)
    problems += unset
    deadline.check(source)
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        # A value left as ${VAR} because VAR is unset, or one the file does not hold in a
        # form any setting takes, is reported once, as that.
        unset_paths = {path for path, _ in unset}
        problems.extend(
            p
            for p in _describe_validation(exc)
            if p[0] not in unset_paths and document.judged(p[0])
        )
    problems.extend(_check_references(data))
    if config is not None:
        problems.extend(_check_terms(list(enumerate(config.contracts)), config.plans))
    else:
        # A mistake elsewhere must not hide the contracts' own: judge the valid ones.
        problems.extend(_check_terms(*_valid_contracts(data)))
    deadline.check(source)

    if problems:
        unique = list(dict.fromkeys(problems))
        unique.sort(key=lambda p: document.line(p[0]) or 0)
        raise ConfigError(
            [ConfigProblem(_render_path(p), msg, document.line(p)) for p, msg in unique], source
        )
    assert config is not None
    return config


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    return f"{'text' if isinstance(value, str) else type(value).__name__} {excerpt(value)}"


def _render_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _expand_env(
    value: object, path: Path_, env: Mapping[str, str], problems: list[tuple[Path_, str]]
) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, (*path, k), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*path, i), env, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        shown = name if len(name) <= EXCERPT_CHARS else excerpt(name)
        problems.append(
            (
                path,
                f"environment variable {shown} is not set; set it, or give a default "
                f"as ${{{shown}:-value}}",
            )
        )
        # Keep the reference so that later rules (e.g. "needs a community") do not
        # report the same mistake a second time.
        return match.group(0)

    # A reference ends at a "}": none can start after the last one. Matching only up to
    # it keeps a long text with many "${x:-" and no "}" linear, not quadratic.
    end = value.rfind("}") + 1
    return _ENV_RE.sub(replace, value[:end]) + value[end:].replace("$$", "$")


def _without_union_tags(loc: Path_) -> Path_:
    """Drop the tag pydantic puts after a probe's index (links.0.probes.0.icmp.timeout):
    the user wrote no such key. A key that merely has a kind's name stays."""
    return tuple(
        part
        for i, part in enumerate(loc)
        if not (
            (part in PROBE_KINDS and i >= 2 and loc[i - 2] == "probes")
            or (part in CHANNEL_KINDS and i >= 2 and loc[i - 2] == "channels")
        )
    )


def _describe_validation(exc: ValidationError) -> Iterator[tuple[Path_, str]]:
    for error in exc.errors(include_url=False):
        loc = _without_union_tags(tuple(error["loc"]))
        # Errors from a model-level validator carry no field: their loc is the item itself.
        kind = error["type"]
        value = error.get("input")
        ctx = error.get("ctx") or {}
        if kind == "extra_forbidden":
            parent = _parent_model(loc[:-1], exc)
            allowed = f"; allowed keys here: {', '.join(parent)}" if parent else ""
            yield loc, f"unknown key {excerpt(loc[-1])}{allowed}"
        elif kind == "missing":
            yield loc, f"required key {excerpt(loc[-1])} is missing"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            what, kinds = (
                ("channel", CHANNEL_KINDS) if "channels" in loc else ("probe", PROBE_KINDS)
            )
            if kind == "union_tag_invalid":
                message = (
                    f"unknown {what} kind {excerpt(ctx.get('tag'))}; allowed: {', '.join(kinds)}"
                )
            else:
                message = f"{what} has no kind; allowed: {', '.join(kinds)}"
            yield (*loc, "kind"), message
        elif kind == "literal_error":
            yield loc, f"{excerpt(value)} is not allowed; use one of {ctx.get('expected')}"
        elif kind == "value_error":
            message = str(ctx.get("error", error["msg"]))
            yield loc, message
        elif kind == "string_pattern_mismatch":
            yield loc, f"{excerpt(value)} {_pattern_hint(loc)}"
        else:
            yield loc, f"{excerpt(value)}: {error['msg'][0].lower()}{error['msg'][1:]}"


def _pattern_hint(loc: Path_) -> str:
    field = loc[-1] if loc else ""
    return {
        "currency": "is not a currency code; use three capital letters, e.g. EUR",
        "password_hash": "is not an argon2id hash; create one with `linkwatch users hash`",
        "url": "is not an http(s) URL, e.g. http://127.0.0.1:8080/health",
        "name": "is not a valid user name; use letters, digits, '.', '_', '@' or '-'",
    }.get(str(field), "does not have the required form")


def _parent_model(loc: Path_, exc: ValidationError) -> list[str]:
    """The keys allowed at `loc`, found by walking the model tree along the path."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _inner_model(field.annotation)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _inner_model(annotation: Any) -> Any:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _check_references(data: Mapping[str, Any]) -> Iterator[tuple[Path_, str]]:
    """Cross-section rules, checked on the raw data so they are reported alongside
    field errors rather than only after those are fixed."""

    def items(section: str) -> list[tuple[int, dict[str, Any]]]:
        return _mappings(data.get(section))

    def ids(section: str) -> set[str]:
        return {str(item["id"]) for _, item in items(section) if "id" in item}

    for section in ("customers", "links", "plans", "contracts", "maintenance"):
        yield from _duplicate_ids(items(section), (section,))

    customers, links = ids("customers"), ids("links")
    known_customers, known_links = _listing(customers), _listing(links)

    def customer_ref(path: Path_, value: object) -> Iterator[tuple[Path_, str]]:
        if isinstance(value, str) and value not in customers:
            yield path, f"unknown customer {excerpt(value)}; defined customers: {known_customers}"

    for index, link in items("links"):
        yield from customer_ref(("links", index, "customer"), link.get("customer"))
        probes = link.get("probes")
        seen_probes: set[str] = set()
        for p_index, probe in enumerate(probes if isinstance(probes, list) else []):
            probe_id = probe.get("id") if isinstance(probe, dict) else None
            if isinstance(probe_id, str):
                if probe_id in seen_probes:
                    yield (
                        ("links", index, "probes", p_index, "id"),
                        f"duplicate probe id {excerpt(probe_id)} within link "
                        f"{excerpt(link.get('id'))}",
                    )
                seen_probes.add(probe_id)

    link_customer = {
        str(link.get("id")): link.get("customer") for _, link in items("links") if "id" in link
    }
    plans = ids("plans")
    for index, contract in items("contracts"):
        yield from customer_ref(("contracts", index, "customer"), contract.get("customer"))
        plan = contract.get("plan")
        if isinstance(plan, str) and plan not in plans:
            known_plans = _listing(plans)
            yield (
                ("contracts", index, "plan"),
                f"unknown plan {excerpt(plan)}; defined plans: {known_plans}",
            )
        for l_index, link_id in enumerate(_list(contract.get("links"))):
            path = ("contracts", index, "links", l_index)
            if isinstance(link_id, str) and link_id not in links:
                yield path, f"unknown link {excerpt(link_id)}; defined links: {known_links}"
            elif (
                isinstance(link_id, str)
                and link_customer.get(link_id) != contract.get("customer")
                and contract.get("customer") in customers
                and link_customer.get(link_id) in customers
            ):
                yield (
                    path,
                    f"link {excerpt(link_id)} belongs to customer "
                    f"{excerpt(link_customer.get(link_id))}, "
                    f"not to the contract's customer {excerpt(contract.get('customer'))}",
                )

    for index, window in items("maintenance"):
        for l_index, link_id in enumerate(_list(window.get("links"))):
            if isinstance(link_id, str) and link_id not in links:
                yield (
                    ("maintenance", index, "links", l_index),
                    f"unknown link {excerpt(link_id)}; defined links: {known_links}",
                )
        for c_index, customer_id in enumerate(_list(window.get("customers"))):
            yield from customer_ref(("maintenance", index, "customers", c_index), customer_id)

    seen_users: dict[str, int] = {}
    for index, user in items("users"):
        if user.get("customer") is not None:
            yield from customer_ref(("users", index, "customer"), user.get("customer"))
        name = user.get("name")
        if isinstance(name, str):
            if name in seen_users:
                yield (
                    ("users", index, "name"),
                    f"duplicate user {excerpt(name)}; already defined as users[{seen_users[name]}]",
                )
            seen_users.setdefault(name, index)

    yield from _check_notifications(data.get("notifications"), customer_ref)


def _listing(names: Iterable[str], most: int = 10) -> str:
    """The ids a reference could have named; a config of 10,000 links names a few."""
    ordered = sorted(names)
    if len(ordered) > most:
        return f"{', '.join(ordered[:most])}, ... ({len(ordered):,} in all)"
    return ", ".join(ordered) or "none defined"


def _mappings(value: object) -> list[tuple[int, dict[str, Any]]]:
    """The mappings of a YAML list, with their indexes (anything else is left to the
    field validation, which reports it)."""
    listed = value if isinstance(value, list) else []
    return [(i, item) for i, item in enumerate(listed) if isinstance(item, dict)]


def _duplicate_ids(
    items: Sequence[tuple[int, dict[str, Any]]], path: Path_
) -> Iterator[tuple[Path_, str]]:
    seen: dict[str, int] = {}
    for index, item in items:
        item_id = item.get("id")
        if not isinstance(item_id, str):
            continue
        if item_id in seen:
            first = _render_path((*path, seen[item_id]))
            yield (*path, index, "id"), f"duplicate id {excerpt(item_id)}; already used by {first}"
        else:
            seen[item_id] = index


def _check_notifications(
    raw: object, customer_ref: Callable[[Path_, object], Iterator[tuple[Path_, str]]]
) -> Iterator[tuple[Path_, str]]:
    section = raw if isinstance(raw, dict) else {}

    def entries(key: str) -> list[tuple[int, dict[str, Any]]]:
        return _mappings(section.get(key))

    for key in ("channels", "routes"):
        yield from _duplicate_ids(entries(key), ("notifications", key))
    channel_kinds = {
        item["id"]: item.get("kind")
        for _, item in entries("channels")
        if isinstance(item.get("id"), str)
    }
    known = _listing(channel_kinds)
    for index, route in entries("routes"):
        path: Path_ = ("notifications", "routes", index)
        channel = route.get("channel")
        if isinstance(channel, str) and channel not in channel_kinds:
            yield (
                (*path, "channel"),
                f"unknown channel {excerpt(channel)}; defined channels: {known}",
            )
        elif route.get("to") is not None and channel_kinds.get(str(channel)) != "email":
            yield (*path, "to"), f"channel {excerpt(channel)} is not e-mail; remove to"
        if route.get("customer") is not None:
            yield from customer_ref((*path, "customer"), route.get("customer"))
            events = route.get("events")
            for e_index, name in enumerate(events if isinstance(events, list) else []):
                if name == EventKind.MONITOR_BLIND.value:
                    yield (
                        (*path, "events", e_index),
                        "monitor-blind is about the monitor, for operations only; "
                        "remove it or remove customer",
                    )


def _valid_contracts(data: Mapping[str, Any]) -> tuple[list[tuple[int, Contract]], list[Plan]]:
    """The contracts (with their index) and plans of `data` that validate on their own;
    a contract whose plan does not is left out, since its terms cannot be resolved."""
    plans: list[Plan] = []
    broken_plans: set[object] = set()
    for _, raw in _mappings(data.get("plans")):
        try:
            plans.append(Plan.model_validate(raw))
        except ValidationError:
            broken_plans.add(raw.get("id"))
    contracts: list[tuple[int, Contract]] = []
    for index, raw in _mappings(data.get("contracts")):
        if raw.get("plan") in broken_plans:
            continue
        try:
            contracts.append((index, Contract.model_validate(raw)))
        except ValidationError:
            continue
    return contracts, plans


def _check_terms(
    contracts: Sequence[tuple[int, Contract]], plans: Sequence[Plan]
) -> Iterator[tuple[Path_, str]]:
    """Rules that need a contract's terms resolved through its plan and versions."""
    for index, contract in contracts:
        path: Path_ = ("contracts", index)
        starts = [(contract.effective_from, path)] + [
            (v.effective_from, (*path, "versions", i)) for i, v in enumerate(contract.versions)
        ]
        for moment, where in starts:
            try:
                terms = contract.terms_at(moment or datetime.min.replace(tzinfo=UTC), plans)
            except ValidationError as exc:
                yield from _unresolved(where, exc)
                break  # the versions after it would say the same again
            if terms is None:
                continue
            places = minor_units(terms.currency)
            if terms.fee != terms.fee.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN):
                yield (
                    (*where, "fee"),
                    f"fee {terms.fee} has more decimals than {terms.currency} allows ({places})",
                )
        dates = [v.effective_from for v in contract.versions]
        if len(set(dates)) != len(dates):
            yield (*path, "versions"), "two versions take effect at the same time"


def _unresolved(where: Path_, exc: ValidationError) -> Iterator[tuple[Path_, str]]:
    """Why a contract's terms do not resolve: every term has a value in the end, so a
    term no layer sets (target) or one set to null (fee: ~) is a mistake."""
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == "missing" and loc == ("target",):
            yield where, "no target; set target (percent) or name a plan that has one"
        elif error["input"] is None and loc:
            name = ".".join(str(part) for part in loc)
            yield (
                (*where, *loc),
                f"{name} is null; give a value, or leave {name} out to take the plan's "
                "(or the default)",
            )
        else:
            yield (*where, *loc), f"{excerpt(error['input'])}: {error['msg']}"


def _list(value: object) -> Sequence[object]:
    return value if isinstance(value, list) else []
