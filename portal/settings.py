"""What the portal runs with. Nothing here does I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network

from kernel.config import PortalConfig


@dataclass(frozen=True, slots=True)
class PortalSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Signs the sign-in form's CSRF token: `linkwatch run` passes portal.secret_key or the
    # key kept in data_dir (portal.app.secret_key). Without one, a random key is drawn
    # and the forms the app issues do not outlive it.
    secret_key: str | None = None
    session_ttl: timedelta = timedelta(hours=12)
    refresh: timedelta = timedelta(seconds=30)
    client_max_size: int = 64 * 1024  # request bodies are small forms and JSON
    # Sign-in attempts within login_failure_window (portal.auth.Throttling): per account
    # from one address, per address, and per account from everywhere, past which
    # addresses new to the account get one attempt per login_slow_interval.
    login_max_failures: int = 5
    login_max_failures_per_address: int = 50
    login_account_ceiling: int = 20
    login_slow_interval: timedelta = timedelta(seconds=30)
    login_failure_window: timedelta = timedelta(minutes=15)
    data_timeout: timedelta = timedelta(seconds=10)  # beyond it a page answers 503
    # Figures shown on pages are read again at most this often: probes report every
    # 30 s or so, and a busy NOC screen must not turn into a query per viewer per second.
    cache_ttl: timedelta = timedelta(seconds=10)
    # Served through a proxy that terminates HTTPS: every request counts as secure.
    behind_https_proxy: bool = False
    # Peers whose X-Forwarded-For names the client (portal.middleware.client_address).
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()

    def __post_init__(self) -> None:
        if self.session_ttl <= timedelta(0):
            raise ValueError("session_ttl must be positive")
        if self.refresh < timedelta(seconds=1):
            raise ValueError("refresh must be at least 1s")
        if self.client_max_size < 1024:
            raise ValueError("client_max_size must be at least 1024 bytes")
        if min(self.login_max_failures, self.login_max_failures_per_address) < 1:
            raise ValueError("login failure limits must be at least 1")
        if self.login_account_ceiling < self.login_max_failures:
            raise ValueError("login_account_ceiling must be at least login_max_failures")
        if self.login_slow_interval <= timedelta(0):
            raise ValueError("login_slow_interval must be positive")
        if self.login_failure_window <= timedelta(0):
            raise ValueError("login_failure_window must be positive")
        if self.data_timeout <= timedelta(0):
            raise ValueError("data_timeout must be positive")
        if self.cache_ttl < timedelta(0):
            raise ValueError("cache_ttl must not be negative")

    @classmethod
    def from_config(cls, portal: PortalConfig) -> PortalSettings:
        return cls(
            host=portal.host,
            port=portal.port,
            secret_key=portal.secret_key,
            session_ttl=portal.session_ttl,
            refresh=portal.refresh,
            behind_https_proxy=portal.behind_https_proxy,
            trusted_proxies=tuple(map(ip_network, portal.trusted_proxies)),
        )
