"""A portal for tests: the real app on the real (embedded) database, over real HTTP on
loopback, with a config of two customers and a fake clock.

`PortalKit` seeds samples through the collector's own write path and state derivation,
so the pages show what a running Linkwatch would show for the same measurements.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from collector import Database, write_samples
from collector.deriver import StateDeriver
from collector.rollups import refresh_after_write
from kernel.config import Config, parse_config
from kernel.domain import Outcome, Sample
from portal import PortalSettings, create_app
from tests.helpers import FAST_HASHER

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday
TTL = timedelta(hours=8)

# name -> (role, customer, password, disabled)
USERS: dict[str, tuple[str, str | None, str, bool]] = {
    "alice": ("customer", "acme", "alice-pw-1234", False),
    "gus": ("customer", "globex", "gus-pw-12345", False),
    "olga": ("ops", None, "olga-pw-1234", False),
    "bill": ("billing", None, "bill-pw-1234", False),
    "ada": ("admin", None, "ada-pw-12345", False),
    "dave": ("customer", "acme", "dave-pw-1234", True),
}
PASSWORDS = {name: spec[2] for name, spec in USERS.items()}


def _users_yaml() -> str:
    lines = []
    for name, (role, customer, password, disabled) in USERS.items():
        customer_part = f", customer: {customer}" if customer else ""
        lines.append(
            f"  - {{name: {name}, role: {role}{customer_part}, disabled: {str(disabled).lower()},"
            f' password_hash: "{FAST_HASHER.hash(password)}"}}'
        )
    return "\n".join(lines)


CONFIG_TEXT = f"""
customers:
  - {{id: acme, name: Acme Corp, timezone: Europe/Berlin}}
  - {{id: globex, name: Globex Inc, timezone: America/New_York}}
links:
  - id: acme-fra-1
    customer: acme
    description: Frankfurt office, 1 Gbit/s fibre
    thresholds: {{rtt_ms: 100}}
    probes:
      - {{id: icmp, kind: icmp, host: 127.0.0.1, interval: 60s}}
  - id: acme-ber-2
    customer: acme
    description: Berlin data centre <backup>
    probes:
      - {{id: icmp, kind: icmp, host: 127.0.0.2, interval: 60s}}
  - id: globex-nyc-1
    customer: globex
    description: New York HQ
    thresholds: {{rtt_ms: 100}}
    probes:
      - {{id: icmp, kind: icmp, host: 127.0.0.3, interval: 5m}}
  - id: globex-bos-2
    customer: globex
    description: Boston branch
    probes:
      - {{id: icmp, kind: icmp, host: 127.0.0.4, interval: 60s}}
contracts:
  - {{id: acme-fra-gold, customer: acme, links: [acme-fra-1], target: 99.5, window: week,
     fee: "250.00", currency: EUR, credit: {{step: 0.5, per_step: 5, cap: 50}}}}
  - {{id: acme-ber-silver, customer: acme, links: [acme-ber-2], target: 99.0, window: month,
     fee: "90.00", currency: EUR, credit: {{step: 0.5, per_step: 5, cap: 30}}}}
  - {{id: globex-nyc-platinum, customer: globex, links: [globex-nyc-1], target: 99.9,
     window: week, fee: "1200.00", currency: USD, credit: {{step: 0.1, per_step: 2, cap: 40}}}}
  - {{id: globex-bos-basic, customer: globex, links: [globex-bos-2], target: 99.0,
     window: month, fee: "60.00", currency: USD}}
users:
{_users_yaml()}
"""


def portal_config(text: str = CONFIG_TEXT) -> Config:
    return parse_config(text, source="portal-test.yaml")


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def minutes(
    start: datetime, end: datetime, step: timedelta = timedelta(minutes=1)
) -> list[datetime]:
    out = []
    at = start
    while at < end:
        out.append(at)
        at += step
    return out


def samples(
    link_id: str,
    times: Iterable[datetime],
    outcome: Outcome = Outcome.UP,
    *,
    probe_id: str = "icmp",
    **fields: Any,
) -> list[Sample]:
    return [Sample(link_id, probe_id, at, outcome, **fields) for at in times]


def standard_history(now: datetime = NOW) -> list[Sample]:
    """acme-fra-1 up (12.34 ms) for three hours; acme-ber-2 down for the last 25 minutes
    after being up; globex-nyc-1 degraded (180 ms) for two days; globex-bos-2 silent."""
    out = samples("acme-fra-1", minutes(now - timedelta(hours=3), now), rtt_ms=12.34, loss_pct=0.0)
    out += samples(
        "acme-ber-2",
        minutes(now - timedelta(hours=3), now - timedelta(minutes=25)),
        rtt_ms=8.0,
        loss_pct=0.0,
    )
    out += samples(
        "acme-ber-2",
        minutes(now - timedelta(minutes=25), now),
        Outcome.DOWN,
        loss_pct=100.0,
        error="no reply (5/5 lost)",
    )
    out += samples(
        "globex-nyc-1",
        minutes(now - timedelta(days=2), now, timedelta(minutes=5)),
        Outcome.DEGRADED,
        rtt_ms=180.0,
        loss_pct=2.5,
        error="rtt 180.0ms >= 100.0ms",
    )
    return out


@dataclass
class PortalKit:
    client: TestClient  # type: ignore[type-arg]
    db: Database
    config: Config
    clock: FakeClock
    notices: list[str] = field(default_factory=list)

    async def store(self, batch: Sequence[Sample]) -> None:
        """Write samples as the collector does, then derive states and rollups."""
        await write_samples(self.db, batch)
        await StateDeriver(self.db, self.config.links).samples_stored(batch)
        await refresh_after_write(self.db, batch)

    async def login(self, name: str, password: str | None = None, **extra: str) -> ClientResponse:
        page = await self.client.get("/login")
        token = form_token(await page.text())
        return await self.client.post(
            "/login",
            data={
                "csrf_token": token,
                "username": name,
                "password": PASSWORDS[name] if password is None else password,
                **extra,
            },
            allow_redirects=False,
        )

    async def sign_in(self, name: str) -> str:
        """Sign in as `name`; returns the session's CSRF token (read from /account)."""
        response = await self.login(name)
        assert response.status == 303, await response.text()
        page = await self.client.get("/account")
        assert page.status == 200, await page.text()
        return form_token(await page.text())

    async def sign_out(self) -> None:
        self.client.session.cookie_jar.clear()

    async def page(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path, allow_redirects=False)
        body = await response.text()
        assert response.status == status, f"{path}: {response.status}\n{body[:2000]}"
        return body


def form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@asynccontextmanager
async def running_portal(
    db: Database,
    config: Config | None = None,
    *,
    now: datetime = NOW,
    settings: PortalSettings | None = None,
    history: Callable[[datetime], list[Sample]] | None = standard_history,
) -> AsyncIterator[PortalKit]:
    """The portal on `db` with `config` (default: the two-customer one), its clock at
    `now`, seeded with `history(now)` unless None. Caching is off unless `settings` turn
    it on, so every request sees what was stored just before it."""
    config = config or portal_config()
    clock = FakeClock(now)
    notices: list[str] = []
    app = create_app(
        settings
        or PortalSettings(session_ttl=TTL, refresh=timedelta(seconds=15), cache_ttl=timedelta(0)),
        db=db,
        config=config,
        clock=clock,
        notices=lambda: notices,
    )
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        kit = PortalKit(client, db, config, clock, notices)
        if history is not None:
            await kit.store(history(now))
        yield kit
