"""The portal's reads layer: every page reads through the `PortalReads` on its app, so a
test can hand a page its data without a database behind it, and every read is bounded by
`data_timeout` (past it the page answers 503 with Retry-After, never hangs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from html import unescape

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import Database
from kernel.config import Link
from kernel.domain import LinkState, LinkStatus, MaintenanceWindow
from notify import status as notification_status
from portal import PortalSettings, reads
from portal.app import create_app
from portal.formatting import NBSP
from portal.keys import READS
from portal.reads import PortalReads
from tests.helpers import board_row
from tests.portal_kit import NOW, TTL, FakeClock, PortalKit, portal_config


class FakeReads(PortalReads):
    """Link states and maintenance as a test says, whatever the database holds."""

    def __init__(self, real: PortalReads, states: Sequence[LinkState]) -> None:
        self.__dict__.update(real.__dict__)
        self.states = {state.link_id: state for state in states}

    async def link_states(
        self, links: Sequence[Link], scope: str, now: datetime
    ) -> dict[str, LinkState]:
        return {x.id: self.states[x.id] for x in links if x.id in self.states}

    async def active_maintenance(self, now: datetime) -> list[MaintenanceWindow]:
        return []


@asynccontextmanager
async def portal(
    db: Database, settings: PortalSettings, states: Sequence[LinkState] | None = None
) -> AsyncIterator[PortalKit]:
    """The portal with no samples stored; with `states`, a `FakeReads` answering them."""
    config = portal_config()
    clock = FakeClock(NOW)
    app = create_app(settings, db=db, config=config, clock=clock)
    if states is not None:
        app[READS] = FakeReads(app[READS], states)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield PortalKit(client, db, config, clock, [])


async def test_a_page_shows_what_its_reads_object_answers(database: Database) -> None:
    down = LinkState(
        link_id="acme-ber-2",
        customer_id="acme",
        description="Berlin backup",
        status=LinkStatus.DOWN,
        since=NOW - timedelta(minutes=7),
    )
    settings = PortalSettings(session_ttl=TTL, cache_ttl=timedelta(0))
    async with portal(database, settings, states=[down]) as kit:
        await kit.sign_in("alice")
        page = await kit.page("/links")
    row = board_row(page, "acme-ber-2")
    assert 'class="row-down"' in row
    assert f"7{NBSP}min ago" in unescape(row)
    # A link the fake knows nothing about is as unknown as one never measured.
    assert 'class="row-unknown"' in board_row(page, "acme-fra-1")


async def _slow(*args: object, **kwargs: object) -> object:
    await asyncio.sleep(30)
    raise AssertionError("the data timeout should have cut this read short")


@pytest.mark.parametrize(
    ("path", "user", "module", "name"),
    [
        # Reads that ran without the data timeout before the pages read through one layer.
        ("/links", "alice", reads, "maintenance_windows"),
        ("/noc", "olga", notification_status, "failed"),
        ("/noc", "olga", reads, "state_failures"),
        ("/billing", "bill", reads, "ledger_page"),
        ("/noc/notifications", "olga", notification_status, "counts"),
    ],
)
async def test_a_read_past_the_data_timeout_is_a_503(
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    user: str,
    module: object,
    name: str,
) -> None:
    settings = PortalSettings(
        session_ttl=TTL, cache_ttl=timedelta(0), data_timeout=timedelta(milliseconds=200)
    )
    async with portal(database, settings) as kit:
        await kit.sign_in(user)
        monkeypatch.setattr(module, name, _slow)
        started = asyncio.get_running_loop().time()
        response = await kit.client.get(path, allow_redirects=False)
        took = asyncio.get_running_loop().time() - started
    assert response.status == 503
    assert response.headers["Retry-After"] == "10"
    assert took < 10  # answered after the timeout, not after the read
