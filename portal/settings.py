"""What the portal runs with, and the shapes of what it reads from the configuration.

The protocols name only the attributes the portal uses, so the portal depends on
`linkwatch.config` by shape rather than by import, and tests can pass plain objects.
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Protocol, TypeVar

from linkwatch.domain import LinkState


class UserLike(Protocol):
    """A portal account as configured (`linkwatch.config` users)."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...  # "customer", "ops", "billing" or "admin"
    @property
    def customer(self) -> str | None: ...  # the customer id, for role "customer"
    @property
    def password_hash(self) -> str: ...  # argon2id PHC string
    @property
    def disabled(self) -> bool: ...


class CustomerLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def tz(self) -> tzinfo: ...


class LinkLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def customer(self) -> str: ...  # the customer id
    @property
    def description(self) -> str: ...


class PortalConfigLike(Protocol):
    """The `portal` section of the configuration."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def secret_key(self) -> str | None: ...
    @property
    def session_ttl(self) -> timedelta: ...
    @property
    def refresh(self) -> timedelta: ...


LinkT = TypeVar("LinkT", bound=LinkLike)

# Current states of the given links at `now`: e.g. functools.partial(current_link_states, db).
# The portal only ever passes links the viewer may see.
StateSource = Callable[[list[LinkT], datetime], Awaitable[list[LinkState]]]


@dataclass(frozen=True, slots=True)
class PortalSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Signs the pre-login CSRF token. Without one, a random key is drawn at start-up,
    # which is fine for a single process: sessions are in memory anyway.
    secret_key: str | None = None
    session_ttl: timedelta = timedelta(hours=12)
    refresh: timedelta = timedelta(seconds=30)
    client_max_size: int = 64 * 1024  # request bodies are small forms
    login_max_failures: int = 5  # per account, within login_failure_window
    login_failure_window: timedelta = timedelta(minutes=15)
    state_timeout: timedelta = timedelta(seconds=10)  # beyond it a page answers 503

    def __post_init__(self) -> None:
        if self.session_ttl <= timedelta(0):
            raise ValueError("session_ttl must be positive")
        if self.refresh < timedelta(seconds=1):
            raise ValueError("refresh must be at least 1s")
        if self.client_max_size < 1024:
            raise ValueError("client_max_size must be at least 1024 bytes")
        if self.login_max_failures < 1:
            raise ValueError("login_max_failures must be at least 1")
        if self.login_failure_window <= timedelta(0):
            raise ValueError("login_failure_window must be positive")
        if self.state_timeout <= timedelta(0):
            raise ValueError("state_timeout must be positive")

    @classmethod
    def from_config(cls, portal: PortalConfigLike) -> PortalSettings:
        return cls(
            host=portal.host,
            port=portal.port,
            secret_key=portal.secret_key,
            session_ttl=portal.session_ttl,
            refresh=portal.refresh,
        )
