"""Operations see each site (/noc/sites and GET /api/v1/sites) over real HTTP on the
embedded PostgreSQL: agents registered, heartbeating and stopped through the collector's
own lease functions, blind spans recorded by the site record as the site guard records
them; and nobody but operations and admins sees either."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector import Database
from collector.agents import AgentIdentity, AgentReport, heartbeat, mark_stopped, register
from collector.site_guard import CanaryResult, SiteStatus
from collector.site_record import SiteRecord
from portal.keys import ACCOUNTS
from tests.helpers import cell, section, table_row, text_of
from tests.portal_kit import CONFIG_TEXT, NOW, PortalKit, portal_config, running_portal
from tests.test_api import conforms

CANARY = "{id: gw, kind: icmp, host: 127.0.0.1}"
CONFIG = portal_config(
    CONFIG_TEXT.replace(
        "links:\n",
        f"site: {{id: ber, name: Berlin, canaries: [{CANARY}]}}\n"
        "sites:\n"
        f"  - {{id: fra, name: Frankfurt, blind_when: 1, canaries: [{CANARY},"
        " {id: core, kind: tcp, host: 127.0.0.1, port: 7}]}\n"
        f"  - {{id: ams, name: Amsterdam, canaries: [{CANARY}]}}\n"
        "links:\n"
        "  - id: acme-multi\n"
        "    customer: acme\n"
        "    vantage: {sites: [ber, fra, ams], quorum: 2}\n"
        "    probes:\n"
        "      - {id: ping, kind: icmp, host: 127.0.0.1}\n"
        "      - {id: web, kind: tcp, host: 127.0.0.1, port: 7}\n"
        "  - id: acme-fra-only\n"
        "    customer: acme\n"
        "    vantage: {sites: [fra]}\n"
        "    probes: [{id: ping, kind: icmp, host: 127.0.0.1}]\n",
        1,
    )
)
LEASE = CONFIG.collector.agent_lease


def identity(agent_id: str) -> AgentIdentity:
    return AgentIdentity(agent_id, agent_id.split("/")[0], f"{agent_id[:3]}-host", 4242, "1.0")


async def note(db: Database, *changes: SiteStatus) -> None:
    """Record the site's changes as `linkwatch run` and the agents do: through the site
    record, written once it is told to stop."""
    record = SiteRecord(db)
    for change in changes:
        await record.note(change)
    stop = asyncio.Event()
    stop.set()
    await record.run(stop)


def status(site_id: str, blind: bool, at: datetime, error: str | None = None) -> SiteStatus:
    canary = CanaryResult("gw", at, blind, error)
    return SiteStatus(site_id, blind, at, (canary,), int(blind), 1)


@dataclass
class Seeded:
    kit: PortalKit
    sample_at: datetime  # fra/a's newest sample, by the real clock


@pytest.fixture
async def seeded(database: Database) -> AsyncIterator[Seeded]:
    async with running_portal(database, CONFIG, history=None) as kit:
        # Frankfurt: one agent live with a backlog, one stopped; blind for 10 minutes.
        live, gone = identity("fra/a"), identity("fra/b")
        sample_at = datetime.now(UTC) - timedelta(seconds=30)
        for me in (live, gone):
            await register(database, me, LEASE)
        report = AgentReport(2048, 17, NOW - timedelta(minutes=10), 2, sample_at)
        assert await heartbeat(database, live, report, LEASE) == ["fra/a", "fra/b"]
        await mark_stopped(database, gone)
        # Amsterdam: its only agent stopped, so nothing measures there.
        amsterdam = identity("ams/a")
        await register(database, amsterdam, LEASE)
        await mark_stopped(database, amsterdam)
        await note(
            database,
            status("ber", True, NOW - timedelta(hours=3), "no reply"),
            status("ber", False, NOW - timedelta(hours=2, minutes=40)),
            status("fra", True, NOW - timedelta(minutes=10), "no reply (3/3 lost)"),
        )
        yield Seeded(kit, sample_at)


async def test_each_site_says_whether_it_sees_and_what_it_measures(seeded: Seeded) -> None:
    kit = seeded.kit
    await kit.sign_in("olga")
    assert '<a href="/noc/sites">Sites</a>' in await kit.page("/noc")
    html = await kit.page("/noc/sites")
    overview = section(html, "sites-heading")
    ber = table_row(overview, 'id="site-ber"')
    assert cell(ber, "Site") == "Berlin ber (this monitor)"
    assert cell(ber, "Now") == "Sees"
    assert cell(ber, "Agents live") == "this monitor"
    # The kit's four links of one probe each, and acme-multi's two probes.
    assert (cell(ber, "Links"), cell(ber, "Measurements")) == ("5", "6")

    fra = table_row(overview, 'id="site-fra"')
    assert cell(fra, "Now") == "Blind since 10\xa0min ago 2026-11-18 11:50 UTC"
    assert cell(fra, "Canaries") == "2, blind when 1 fail"
    assert cell(fra, "Agents live") == "1 of 2"
    assert (cell(fra, "Links"), cell(fra, "Measurements")) == ("2", "3")

    ams = table_row(overview, 'id="site-ams"')
    assert cell(ams, "Now") == "No live agent"
    assert cell(ams, "Agents live") == "0 of 1"
    assert (cell(ams, "Links"), cell(ams, "Measurements")) == ("1", "2")


async def test_a_sites_agents_canaries_and_blind_spans_are_listed(seeded: Seeded) -> None:
    kit = seeded.kit
    await kit.sign_in("ada")
    html = await kit.page("/noc/sites")

    fra = section(html, "site-fra-heading")
    notice = text_of(re.findall(r'<p class="notice" role="alert">.*?</p>', fra, re.S)[0])
    assert notice.startswith("Blind since 10 min ago")
    assert "1 of 1 canaries failing (gw: no reply (3/3 lost))" in notice
    assert text_of(fra.split("<h3>Canaries</h3>")[1].split("</ul>")[0]) == "gw icmp core tcp"
    live = table_row(fra, '<td data-label="Agent" class="mono">fra/a</td>')
    assert cell(live, "Host") == "fra-host pid 4242"
    assert cell(live, "Lease") == "live"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC \((just now|\d+\xa0s ago)\)", cell(
        live, "Last heartbeat"
    ))  # fmt: skip
    assert cell(live, "Spool") == "2.0\xa0KiB"
    assert cell(live, "Queued") == "17 samples"
    assert cell(live, "Canaries") == "blind since 2026-11-18 11:50 UTC"  # as every staff page
    assert re.fullmatch(
        rf"{seeded.sample_at:%Y-%m-%d %H:%M} UTC \(lag 3\d\xa0s\)", cell(live, "Last sample")
    )
    stopped = table_row(fra, '<td data-label="Agent" class="mono">fra/b</td>')
    assert cell(stopped, "Lease").startswith("stopped ")
    assert cell(stopped, "Last sample") == "none yet"
    span = table_row(fra.split("<h3>Blind spans</h3>")[1], "still blind")
    assert cell(span, "Lasted") == "10\xa0min"
    assert cell(span, "Why") == "1 of 1 canaries failing (gw: no reply (3/3 lost))"

    ber = section(html, "site-ber-heading")
    assert 'role="alert"' not in ber
    assert "Measured by this monitor itself" in text_of(ber)
    span = table_row(ber.split("<h3>Blind spans</h3>")[1], "<td")
    assert cell(span, "Lasted") == "20\xa0min"
    assert cell(span, "Until") == "2\xa0h 40\xa0min ago 2026-11-18 09:20 UTC"

    ams = section(html, "site-ams-heading")
    assert "No live agent: none of its agents has renewed its lease, so its 2 measurements" in (
        text_of(ams)
    )
    assert "No blind span in the last 7 days." in text_of(ams)


async def token(kit: PortalKit, name: str) -> str:
    accounts = kit.client.server.app[ACCOUNTS]
    user = await accounts.user(name)
    assert user is not None
    return (await accounts.create_token(user, "sites", kit.clock()))[1]


async def get(kit: PortalKit, name: str, path: str, expect: int) -> Any:
    document = await (await kit.client.get("/api/v1/openapi.json")).json()
    headers = {"Authorization": f"Bearer {await token(kit, name)}"}
    response = await kit.client.get(path, headers=headers)
    body = await response.json()
    assert response.status == expect, body
    conforms(document, "GET", path, response.status, body)
    return body


async def test_the_api_gives_the_same_sites(seeded: Seeded) -> None:
    body = await get(seeded.kit, "olga", "/api/v1/sites", 200)
    sites = {site["id"]: site for site in body["items"]}
    assert list(sites) == ["ber", "fra", "ams"]
    ber, fra, ams = sites["ber"], sites["fra"], sites["ams"]
    assert (ber["home"], ber["state"], ber["blind"], ber["agents"]) == (True, "sees", None, [])
    assert ber["blind_spans"] == [
        {
            "starts_at": (NOW - timedelta(hours=3)).isoformat(),
            "ends_at": (NOW - timedelta(hours=2, minutes=40)).isoformat(),
            "reason": "1 of 1 canaries failing (gw: no reply)",
        }
    ]
    assert fra["state"] == "blind"
    assert fra["blind"] == {
        "since": (NOW - timedelta(minutes=10)).isoformat(),
        "reason": "1 of 1 canaries failing (gw: no reply (3/3 lost))",
    }
    assert fra["canaries"] == [{"id": "gw", "kind": "icmp"}, {"id": "core", "kind": "tcp"}]
    assert (fra["blind_when"], fra["live_agents"], fra["links"], fra["measurements"]) == (
        1,
        1,
        2,
        3,
    )
    live, stopped = fra["agents"]
    assert (live["id"], live["live"], live["spool_bytes"], live["queued"]) == (
        "fra/a",
        True,
        2048,
        17,
    )
    assert live["last_sample_at"] == seeded.sample_at.isoformat()
    assert 30 <= live["sample_lag_s"] < 40
    assert 0 <= live["heartbeat_age_s"] < 10
    assert (stopped["id"], stopped["live"], stopped["sample_lag_s"]) == ("fra/b", False, None)
    assert stopped["stopped_at"] is not None
    assert (ams["state"], ams["live_agents"], ams["blind_spans"]) == ("silent", 0, [])


async def test_nobody_but_operations_sees_the_sites(seeded: Seeded) -> None:
    kit = seeded.kit
    for name in ("alice", "bill"):
        await kit.sign_in(name)
        response = await kit.client.get("/noc/sites")
        assert response.status == 404, name
        assert "Frankfurt" not in await response.text()
        await kit.sign_out()
        body = await get(kit, name, "/api/v1/sites", 404)
        assert "fra" not in str(body)
    assert (await kit.client.get("/noc/sites", allow_redirects=False)).status == 303
