"""The operations dashboard over real HTTP on the embedded PostgreSQL: outages with
their running duration and budget countdowns, budgets at a warning level, compliance
counts from the ledger, the worst-first board with its filters, and who may see it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest

from collector import Database
from collector.intervals import END_OF_TIME
from collector.writer import write_samples
from kernel.domain import Outcome, Sample
from portal import PortalSettings, reads
from sla import ledger
from sla.ledger import refresh_ledger
from tests.helpers import element, table_row, text_of
from tests.portal_kit import (
    CONFIG_TEXT,
    NOW,
    TTL,
    PortalKit,
    minutes,
    portal_config,
    running_portal,
    samples,
)

# Probes every 10 minutes: a week is a thousand samples a link, so each test stays fast.
CONFIG = portal_config(
    CONFIG_TEXT.replace("interval: 60s", "interval: 10m").replace("interval: 5m", "interval: 10m")
)
STEP = timedelta(minutes=10)
# 2026-W47 began Monday 2026-11-16 00:00 in Berlin; NOW is the Wednesday at 12:00 UTC.
WEEK_START = datetime(2026, 11, 15, 23, 0, tzinfo=UTC)
LAST_WEEK = WEEK_START - timedelta(days=7)
# acme-fra-gold: 99.5 % of a 604,800 s week is a budget of 3,024 s (50 min 24 s).
OUTAGE_START = NOW - timedelta(minutes=20)


def _every(start: datetime, end: datetime) -> list[datetime]:
    return minutes(start, end, STEP)


def fra_week(now: datetime = NOW) -> list[Sample]:
    """acme-fra-1 up since the week began, down for the last 20 minutes."""
    up = samples("acme-fra-1", _every(WEEK_START, OUTAGE_START), rtt_ms=4.0, loss_pct=0.0)
    return up + samples("acme-fra-1", _every(OUTAGE_START, now), Outcome.DOWN, loss_pct=100.0)


async def go_on(kit: PortalKit, delta: timedelta, outcome: Outcome = Outcome.DOWN) -> None:
    """The clock moves on and acme-fra-1 keeps reporting `outcome` meanwhile."""
    start = kit.clock.now
    kit.clock.advance(delta)
    await kit.store(samples("acme-fra-1", _every(start, kit.clock.now), outcome))


def outage_item(html: str, link_id: str) -> str:
    items = re.findall(r'<li class="outage level-[a-z]+">.*?</ul>\s*</li>', html, re.S)
    (item,) = [i for i in items if f'href="/links/{link_id}"' in i]
    return item


def section(html: str, heading_id: str) -> str:
    return html.split(f'id="{heading_id}"')[1].split("</section>")[0]


@pytest.fixture
async def kit(database: Database) -> AsyncIterator[PortalKit]:
    async with running_portal(database, CONFIG, history=fra_week) as portal:
        yield portal


async def test_an_outage_counts_down_its_budget_turns_red_before_the_breach_then_says_breached(
    kit: PortalKit,
) -> None:
    await kit.sign_in("olga")
    item = outage_item(await kit.page("/noc"), "acme-fra-1")
    assert 'class="outage level-warning"' in item
    shown = text_of(item)
    assert "20 min down since 20 min ago" in shown
    assert "Frankfurt office, 1 Gbit/s fibre · Acme Corp" in shown
    # 50 min 24 s of budget, 20 min used: 30 min 24 s left, shown as 30 min (never more).
    assert "acme-fra-gold budget runs out in 30 min" in shown
    assert "2026-W47 · target 99.5 % · budget 50 min · 30 min of 50 min left" in shown
    assert "breach at 2026-11-18 12:30 UTC" in shown
    assert '<li class="countdown level-warning">' in item

    await go_on(kit, timedelta(minutes=20))  # 40 min down: 10 min 24 s left
    item = outage_item(await kit.page("/partial/noc"), "acme-fra-1")
    assert 'class="outage level-critical"' in item
    assert "40 min down" in text_of(item)
    assert "budget runs out in 10 min" in text_of(item)

    await go_on(kit, timedelta(minutes=20))  # 60 min down: breached 9 min 36 s ago
    item = outage_item(await kit.page("/partial/noc"), "acme-fra-1")
    assert 'class="outage level-critical"' in item
    assert "1 h down" in text_of(item)
    assert "breached 9 min ago" in text_of(item)
    assert "ran out at 2026-11-18 12:30 UTC" in text_of(item)


async def test_an_outage_card_counts_every_duration_on_one_clock(database: Database) -> None:
    """The link board (shared with /links) was read two minutes before the dashboard:
    the whole page is as of that read, so its "Updated" times agree with each other and
    with the card's running duration, its "down since" and its countdown."""
    settings = PortalSettings(session_ttl=TTL, cache_ttl=timedelta(minutes=10))
    async with running_portal(database, CONFIG, settings=settings, history=fra_week) as kit:
        await kit.sign_in("olga")
        await kit.page("/links")  # the board every staff page shares, read at 12:00
        await go_on(kit, timedelta(minutes=2))
        html = await kit.page("/noc")
        assert set(re.findall(r"Updated ([0-9:]+ UTC)", text_of(html))) == {"12:00:00 UTC"}
        shown = text_of(outage_item(html, "acme-fra-1"))
        assert "20 min down since 20 min ago" in shown
        # 50 min 24 s of budget, 20 min used: 30 min 24 s left.
        assert "budget runs out in 30 min" in shown
        assert "breach at 2026-11-18 12:30 UTC" in shown


async def test_a_link_that_comes_back_leaves_the_outages_but_its_budget_stays_watched(
    kit: PortalKit,
) -> None:
    await go_on(kit, timedelta(minutes=20))  # 40 min of the 50 min budget used ...
    await go_on(kit, timedelta(minutes=30), Outcome.UP)  # ... then back up
    await refresh_ledger(kit.db, kit.config, ["2026-W47"], kit.clock.now)
    await kit.sign_in("olga")
    html = await kit.page("/noc")
    outages = section(html, "outages-heading")
    assert "No outage is using error budget now." in outages
    watched = section(html, "watch-heading")
    row = table_row(watched, '<span class="link-id">acme-fra-gold</span>')
    # Budget used is a share (2,400 s of 3,024 s: 79.365 %, truncated to two decimals);
    # availability has the contract's decimals (the default three), the target as written.
    assert "79.36 %" in text_of(row)
    assert "98.921 % / 99.5 %" in text_of(row)  # 98.9213 % as the ledger keeps it
    assert "≥ 50 % warning" in text_of(row)
    assert '<span class="badge badge-up">Up</span>' in row


async def test_compliance_counts_are_the_ledgers(database: Database) -> None:
    def history(now: datetime) -> list[Sample]:
        # Last week acme-fra-1 met its target and globex-nyc-1 missed it (2 h down);
        # this week acme-fra-1 is on track and globex-nyc-1 has no data.
        out = samples("acme-fra-1", _every(LAST_WEEK, now), rtt_ms=4.0, loss_pct=0.0)
        nyc_week = datetime(2026, 11, 9, 5, 0, tzinfo=UTC)
        outage = (nyc_week + timedelta(days=2), nyc_week + timedelta(days=2, hours=2))
        out += samples("globex-nyc-1", _every(nyc_week, outage[0]), rtt_ms=4.0, loss_pct=0.0)
        out += samples("globex-nyc-1", _every(*outage), Outcome.DOWN)
        out += samples("globex-nyc-1", _every(outage[1], nyc_week + timedelta(days=6, hours=23)))
        return out

    # globex-nyc-platinum asks for two decimals of availability.
    config = portal_config(
        CONFIG_TEXT.replace("interval: 60s", "interval: 10m")
        .replace("interval: 5m", "interval: 10m")
        .replace("currency: USD, credit:", "currency: USD, availability_decimals: 2, credit:")
    )
    async with running_portal(database, config, history=history) as kit:
        labels = ["2026-W46", "2026-W47", "2026-10", "2026-11"]
        await refresh_ledger(kit.db, kit.config, labels, NOW - timedelta(minutes=5))
        rows = [r for r in await ledger.list_rows(kit.db) if r.kind == "window"]
        await kit.sign_in("olga")
        html = section(await kit.page("/noc"), "compliance-heading")
        periods = {
            text_of(p.split("</h3>")[0]).split(" 2026")[0].strip(): text_of(p)
            for p in html.split('<article class="period">')[1:]
        }
        assert "1 missed 1 met 2 contract windows · as of 5 min ago" in periods["Last week"]
        this_week = periods["This week"]
        assert "1 on track 1 no data 2 contract windows" in this_week
        assert "running" in this_week
        # The monthly links were never measured: their running month has rows (no data);
        # October, over before anything was measured, has none.
        assert "2 no data" in periods["This month"]
        assert "No contract window in the ledger yet." in periods["Last month"]
        assert len(rows) == 6  # two weekly contracts over two weeks, two monthly over one

        listing = await kit.page("/noc/compliance?period=last-week&outcome=missed")
        missed_row = table_row(element(listing, "table", "compliance"), "globex-nyc-platinum")
        assert "acme-fra-gold" not in listing
        (missed,) = [r for r in rows if r.window_label == "2026-W46" and r.met is False]
        assert missed.contract_id == "globex-nyc-platinum"
        assert '<span class="outcome outcome-missed">' in missed_row
        # 98.8047 % as the ledger keeps it, shown to the contract's two decimals; the
        # target as written; budget used as a share, to two decimals.
        assert (missed.availability_pct, missed.budget_used_pct) == (
            Decimal("98.8047"),
            Decimal("1195.2191"),
        )
        cells = [text_of(c) for c in re.findall(r"<td[^>]*>.*?</td>", missed_row, re.S)]
        assert cells[4:7] == ["98.80 %", "99.9 %", "1195.21 %"], cells
        assert "/billing/ledger/" not in listing  # ops have no billing desk
        assert 'href="/noc/compliance?period=last-week&amp;outcome=missed"' in html


async def test_only_operations_and_admins_reach_the_dashboard(kit: PortalKit) -> None:
    for path in ("/noc", "/partial/noc", "/noc/compliance"):
        response = await kit.client.get(path, allow_redirects=False)
        assert response.status == (401 if path.startswith("/partial") else 303)
    for name in ("bill", "alice"):
        await kit.sign_in(name)
        # Billing reads the compliance rate too (tests/test_terms_compliance.py).
        paths = (
            ("/noc", "/partial/noc")
            if name == "bill"
            else ("/noc", "/partial/noc", "/noc/compliance")
        )
        for path in paths:
            response = await kit.client.get(path)
            assert response.status == 404, (name, path)
            assert "Acme" not in await response.text()
        await kit.sign_out()
    await kit.sign_in("ada")
    assert "Outages now" in text_of(section(await kit.page("/noc"), "outages-heading"))


async def test_the_board_filters_pages_and_refreshes_in_place(kit: PortalKit) -> None:
    await kit.sign_in("olga")
    html = await kit.page("/noc?status=down")
    board = section(html, "board-heading")
    assert re.findall(r'<a class="link-id" href="/links/([^"]+)">', board) == ["acme-fra-1"]
    assert 'data-refresh-url="/partial/noc?status=down"' in html
    assert re.search(r'<script src="/static/refresh\.js[^"]*" defer></script>', html)
    tiles = element(html, "section", "noc-states")
    for tile in ('class="tile tile-down selected"', 'class="tile tile-unknown"'):
        assert tile in tiles
    fragment = await kit.page("/partial/noc?customer=globex")
    assert "<html" not in fragment
    tiles = element(fragment, "section", "noc-states")
    assert "2 links of Globex Inc 2 unknown" in text_of(tiles)  # the chosen customer's counts
    assert 'href="/noc?status=unknown&amp;customer=globex#board"' in tiles
    board = section(fragment, "board-heading")
    assert re.findall(r'<a class="link-id" href="/links/([^"]+)">', board) == [
        "globex-bos-2",
        "globex-nyc-1",
    ]
    bad = await kit.client.get("/noc?status=purple")
    assert bad.status == 400
    assert "status='purple' is not allowed" in unescape(await bad.text())
    assert (await kit.client.get("/noc?customer=nobody")).status == 404


async def test_every_screen_shares_one_read_of_each_figure(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"windows": 0, "standings": 0}
    real_windows, real_standings = reads.compute_plan, reads.standings

    async def counted_windows(*args: object, **kwargs: object) -> object:
        calls["windows"] += 1
        return await real_windows(*args, **kwargs)  # type: ignore[arg-type]

    async def counted_standings(*args: object, **kwargs: object) -> object:
        calls["standings"] += 1
        return await real_standings(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reads, "compute_plan", counted_windows)
    monkeypatch.setattr(reads, "standings", counted_standings)
    settings = PortalSettings(session_ttl=TTL, cache_ttl=timedelta(seconds=60))
    async with running_portal(database, CONFIG, settings=settings, history=fra_week) as kit:
        await kit.sign_in("olga")
        for _ in range(5):
            item = outage_item(await kit.page("/partial/noc"), "acme-fra-1")
            assert "budget runs out in 30" in text_of(item)
        await kit.sign_out()
        await kit.sign_in("ada")
        await kit.page("/noc")
    # One contract is affected (weekly): one windows read for it, one ledger read.
    assert calls == {"windows": 1, "standings": 1}


async def test_groups_and_unknown_time_count_as_their_contracts_say(database: Database) -> None:
    config = portal_config(
        CONFIG_TEXT.replace("interval: 60s", "interval: 10m")
        .replace("interval: 5m", "interval: 10m")
        .replace(
            'fee: "60.00", currency: USD}', 'fee: "60.00", currency: USD, unknown: count_as_down}'
        )
        .replace(
            "users:",
            "  - {id: acme-pair, customer: acme, links: [acme-fra-1, acme-ber-2],"
            ' group: redundant, target: 99.9, window: week, fee: "100.00", currency: EUR}\nusers:',
            1,
        )
    )

    def history(now: datetime) -> list[Sample]:
        ber = samples("acme-ber-2", _every(WEEK_START, now), rtt_ms=3.0, loss_pct=0.0)
        return fra_week(now) + ber

    async with running_portal(database, config, history=history) as kit:
        await kit.sign_in("olga")
        html = await kit.page("/noc")
        fra = text_of(outage_item(html, "acme-fra-1"))
        assert "acme-fra-gold budget runs out in 30 min" in fra
        assert "acme-pair (group) no budget used: another link of the group is up" in fra
        # globex-bos-2 has never reported: unknown, which its contract counts as down.
        bos = outage_item(html, "globex-bos-2")
        assert '<span class="badge badge-unknown">Unknown</span>' in bos
        assert "globex-bos-basic budget already exhausted" in text_of(bos)
        assert "budget 7 h 12 min · exceeded by 17 d" in text_of(bos)
        # globex-nyc-1 is silent too, but its contract leaves unknown time out.
        assert (
            'href="/links/globex-nyc-1"'
            not in section(html, "outages-heading").split('class="lesser"')[0]
        )


async def test_a_link_whose_states_cannot_be_derived_is_named_until_it_derives_again(
    kit: PortalKit,
) -> None:
    # What an old import stored: a sample no status can be held after. The next live
    # batch derives acme-fra-1 up to it, and fails; every other link is still derived.
    await write_samples(kit.db, [Sample("acme-fra-1", "icmp", END_OF_TIME, Outcome.UP)])
    await kit.store(
        samples("acme-fra-1", [NOW], Outcome.DOWN, loss_pct=100.0)
        + samples("globex-nyc-1", [NOW], rtt_ms=9.0)
    )
    await kit.sign_in("olga")
    notices = [
        text_of(n).strip()
        for n in re.findall(r'<p class="notice" role="alert">.*?</p>', await kit.page("/noc"), re.S)
    ]
    [notice] = [n for n in notices if "cannot be derived" in n]
    assert notice.startswith("The states of acme-fra-1 cannot be derived from its samples since")
    assert "(probe icmp: ValueError: the sample of probe icmp at 9999-12-31T23:59:59.999999" in (
        notice
    )
    assert "linkwatch import samples --replace" in notice

    async with kit.db.connection() as conn:
        await conn.execute("DELETE FROM samples WHERE observed_at = %s", (END_OF_TIME,))
    await kit.store(samples("acme-fra-1", [NOW + STEP], Outcome.DOWN, loss_pct=100.0))
    assert "cannot be derived" not in await kit.page("/noc")
