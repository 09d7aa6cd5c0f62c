"""The config's top-level sections, and `Config`, the root that holds them all.

Database, collector, probing, portal, customers, maintenance, users and the ledger are
here; links and their probes are in `links`, contracts in `contracts`, notifications in
`notifications`. Rules across sections (a link's customer, a contract's links) are
checked on the raw data by `references`, not here.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from kernel.config.contracts import Contract, Plan
from kernel.config.fields import (
    AwareDatetime,
    Duration,
    HostPort,
    Id,
    Percent,
    TimeZoneName,
    _blank_is_none,
    _rule,
    _split_host_port,
    _Strict,
)
from kernel.config.links import Link
from kernel.config.notifications import NotificationsConfig
from kernel.config.recurring import RecurringMaintenance
from kernel.config.sites import SiteConfig, measure_from_sites
from kernel.domain import MaintenanceWindow, SampleTimes
from kernel.durations import format_duration
from kernel.formatting import DEFAULT_AVAILABILITY_DECIMALS, excerpt


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


# Short enough that a killed agent's links move within minutes, long enough that a
# heartbeat (a quarter of it) is not mostly database round trips.
AGENT_LEASE_MIN = timedelta(seconds=2)
AGENT_LEASE_MAX = timedelta(minutes=10)


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
    # How long a probe agent's heartbeat holds its share of its site's links: it beats
    # every quarter of this, and a killed agent's links move after at most this long.
    agent_lease: Duration = timedelta(seconds=60)

    @_rule
    def _lease(self) -> None:
        if not AGENT_LEASE_MIN <= self.agent_lease <= AGENT_LEASE_MAX:
            raise ValueError(
                f"agent_lease {format_duration(self.agent_lease)} must be between "
                f"{format_duration(AGENT_LEASE_MIN)} and {format_duration(AGENT_LEASE_MAX)}"
            )

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
    # A pydantic field, copied per item (ruff cannot see the BaseModel behind _Strict).
    trusted_proxies: list[Annotated[str, AfterValidator(_check_network)]] = []  # noqa: RUF012

    @property
    def host(self) -> str:
        return _split_host_port(self.listen, 8080)[0]

    @property
    def port(self) -> int:
        return _split_host_port(self.listen, 8080)[1]


class Customer(_Strict):
    id: Id
    name: str = Field(min_length=1)
    timezone: TimeZoneName = "UTC"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class LedgerConfig(_Strict):
    """What the credit ledger asks a person to look at before a credit is approved."""

    # Windows measured for less of their time than this (percent) are flagged for review,
    # and approving one takes a note; 0 flags none.
    review_coverage_below: Percent = Decimal("90")


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
    site: SiteConfig = SiteConfig()  # where `linkwatch run` measures from
    sites: list[SiteConfig] = Field(default_factory=list)  # where agents measure from
    probing: ProbingConfig = ProbingConfig()
    portal: PortalConfig = PortalConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    ledger: LedgerConfig = LedgerConfig()
    customers: list[Customer] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    plans: list[Plan] = Field(default_factory=list)
    contracts: list[Contract] = Field(default_factory=list)
    maintenance: list[Maintenance] = Field(default_factory=list)
    recurring: list[RecurringMaintenance] = Field(default_factory=list)  # maintenance series
    users: list[User] = Field(default_factory=list)

    @model_validator(mode="after")
    def _measured(self) -> Config:
        """Each link with a `vantage` holds one measurement per site (kernel.config.sites):
        what every part after the config sees as its probes."""
        if not any(link.vantage is not None for link in self.links):
            return self
        measured = measure_from_sites(self.links, self.site.id)
        return self.model_copy(update={"links": measured})

    def all_sites(self) -> list[SiteConfig]:
        """This monitor's site, then the agents'."""
        return [self.site, *self.sites]

    def _by_id(self, section: Literal["customers", "links", "contracts"]) -> dict[str, Any]:
        """id -> item of a section, built on first use: a portal page or a notification
        looks up contracts and customers by id thousands of times among 10,000 of them.
        Kept in the instance's __dict__ beside its fields, as functools' cached_property
        keeps a value, so that pydantic's equality ignores it; each index remembers the
        list it was made from, so a copy with that section replaced builds its own."""
        key = f"_index_{section}"
        items = getattr(self, section)
        found = self.__dict__.get(key)
        if found is None or found[0] is not items:
            found = self.__dict__[key] = (items, {item.id: item for item in reversed(items)})
        index: dict[str, Any] = found[1]
        return index

    def customer(self, customer_id: str) -> Customer:
        customer: Customer = self._by_id("customers")[customer_id]
        return customer

    def link(self, link_id: str) -> Link:
        link: Link = self._by_id("links")[link_id]
        return link

    def contract(self, contract_id: str) -> Contract | None:
        contract: Contract | None = self._by_id("contracts").get(contract_id)
        return contract

    def availability_decimals(self, contract_id: str, at: datetime) -> int:
        """Decimals of the availability people read for the contract's window starting
        `at` (the terms in force then); the default for a contract the config no longer
        has, or one not yet in force."""
        contract = self.contract(contract_id)
        terms = None if contract is None else contract.terms_at(at, self.plans)
        return DEFAULT_AVAILABILITY_DECIMALS if terms is None else terms.availability_decimals
