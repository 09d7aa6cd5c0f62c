"""The portal's sign-in, sessions, tokens, link board and hardening, over real HTTP on
loopback, on the embedded PostgreSQL with samples stored through the collector."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import stat
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from html import unescape
from ipaddress import ip_network
from pathlib import Path

import aiohttp
import pytest
from aiohttp import ClientResponse

from collector import Database
from collector.embedded import EmbeddedPostgres
from kernel.config import parse_config
from kernel.domain import Outcome
from kernel.errors import ConfigError, DatabaseError
from kernel.logs import setup_logging
from portal import PortalSettings, reads
from portal.auth import address_key
from portal.keys import ACCOUNTS, SETTINGS
from tests.helpers import (
    FAST_HASHER,
    board_row,
    browser,
    cell,
    element,
    free_port,
    heading,
    linkwatch,
    probe_row,
    start_linkwatch,
    stopped_after,
    table_row,
    text_of,
    until,
)
from tests.portal_kit import (
    NOW,
    PASSWORDS,
    TTL,
    PortalKit,
    form_token,
    minutes,
    portal_config,
    running_portal,
    samples,
)


@pytest.fixture
async def kit(database: Database) -> AsyncIterator[PortalKit]:
    async with running_portal(database) as portal:
        yield portal


def link_ids_in_order(html: str) -> list[str]:
    return re.findall(r'<a class="link-id" href="/links/([^"]+)">', html)


def sign_in_alert(html: str) -> str:
    """What the sign-in page's alert says."""
    return text_of(element(element(html, "section", "card"), "p", "alert"))


def refresh_tag(html: str) -> str:
    """The start tag of the page's self-refreshing part, with its refresh attributes."""
    return element(html, "div", "refreshing").split(">", 1)[0]


# --- health and sign-in ------------------------------------------------------------------


async def test_healthz_answers_without_login(kit: PortalKit) -> None:
    response = await kit.client.get("/healthz")
    assert response.status == 200
    health = await response.json()
    assert health["status"] == "ok"
    assert health["database"]["reachable"] is True


async def test_the_icon_is_served_to_anyone_and_cached(kit: PortalKit) -> None:
    response = await kit.client.get("/favicon.ico", allow_redirects=False)
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/x-icon"
    assert "max-age=" in response.headers["Cache-Control"]
    icon = await response.read()
    assert icon[:4] == b"\x00\x00\x01\x00"  # an ICO file, as every browser takes it
    head = re.search(r"<head>.*?</head>", await kit.page("/login"), flags=re.S)
    assert head
    assert re.search(r'<link rel="icon" href="/favicon\.ico"', head.group(0))


async def test_pages_send_anonymous_visitors_to_sign_in(kit: PortalKit) -> None:
    response = await kit.client.get("/links/acme-fra-1", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=/links/acme-fra-1"
    fragment = await kit.client.get("/partial/links")
    assert fragment.status == 401


async def test_each_role_lands_where_its_work_is(kit: PortalKit) -> None:
    for name, landing in (("alice", "/links"), ("olga", "/noc"), ("bill", "/billing")):
        await kit.sign_in(name)
        response = await kit.client.get("/", allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (303, landing)
        await kit.sign_out()


async def test_login_with_right_password_shows_links(kit: PortalKit) -> None:
    response = await kit.login("alice")
    assert response.status == 303
    assert response.headers["Location"] == "/"
    html = await kit.page("/links")
    assert "acme-fra-1" in link_ids_in_order(html)
    account = element(html, "div", "account")
    assert text_of(element(account, "a", "who")) == "alice customer"
    assert "Sign out" in text_of(account)


async def test_login_returns_to_the_page_asked_for_but_never_off_site(kit: PortalKit) -> None:
    response = await kit.login("olga", next="/links/acme-ber-2")
    assert response.headers["Location"] == "/links/acme-ber-2"
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        await kit.sign_out()
        response = await kit.login("olga", next=hostile)
        assert response.headers["Location"] == "/"


async def test_wrong_password_and_unknown_user_get_the_same_answer(kit: PortalKit) -> None:
    wrong = await kit.login("alice", "not-her-password")
    wrong_text = await wrong.text()
    unknown = await _attempt(kit, "mallory", "alice-pw-1234")
    assert wrong.status == unknown.status == 401
    assert sign_in_alert(wrong_text) == "Wrong username or password."
    assert sign_in_alert(await unknown.text()) == "Wrong username or password."
    assert "linkwatch_session" not in wrong.cookies
    assert "linkwatch_session" not in unknown.cookies
    assert (await kit.client.get("/", allow_redirects=False)).status == 303


async def test_disabled_user_cannot_log_in(kit: PortalKit) -> None:
    response = await kit.login("dave")
    assert response.status == 401
    assert sign_in_alert(await response.text()) == "Wrong username or password."


# --- who sees what ------------------------------------------------------------------------


async def test_customer_sees_only_their_own_links(kit: PortalKit) -> None:
    await kit.sign_in("alice")
    html = await kit.page("/links")
    assert link_ids_in_order(html) == ["acme-ber-2", "acme-fra-1"]
    assert "globex" not in html.lower()
    assert "New York" not in html
    fragment = await kit.page("/partial/links")
    assert link_ids_in_order(fragment) == ["acme-ber-2", "acme-fra-1"]


async def test_a_customer_cannot_filter_their_way_to_another_customer(kit: PortalKit) -> None:
    await kit.sign_in("alice")
    other = await kit.client.get("/links?customer=globex")
    missing = await kit.client.get("/links?customer=no-such-customer")
    assert other.status == missing.status == 404
    assert "globex" not in (await other.text()).lower()


async def test_other_customers_link_is_as_missing_as_a_nonexistent_one(kit: PortalKit) -> None:
    await kit.sign_in("alice")
    others = await kit.client.get("/links/globex-nyc-1")
    missing = await kit.client.get("/links/no-such-link")
    assert others.status == missing.status == 404
    assert await others.text() == await missing.text()
    assert "New York" not in await others.text()
    partial = await kit.client.get("/partial/links/globex-nyc-1")
    assert partial.status == 404


async def test_ops_sees_every_link_worst_first(kit: PortalKit) -> None:
    await kit.sign_in("olga")
    html = await kit.page("/links")
    assert link_ids_in_order(html) == ["acme-ber-2", "globex-nyc-1", "globex-bos-2", "acme-fra-1"]
    summary = element(html, "p", "summary")
    assert text_of(element(summary, "span", "total")) == "4 links"
    for status in ("down", "degraded", "unknown", "up"):
        assert text_of(element(summary, "span", f"count-{status}")) == f"1 {status}"
    for link, status, label in (
        ("acme-ber-2", "down", "Down"),
        ("globex-nyc-1", "degraded", "Degraded"),
        ("globex-bos-2", "unknown", "Unknown"),
    ):
        assert f'<span class="badge badge-{status}">{label}</span>' in board_row(html, link)
    assert 'data-label="Customer">Acme Corp<' in board_row(html, "acme-fra-1")
    assert 'data-label="Customer">Globex Inc<' in board_row(html, "globex-nyc-1")


async def test_staff_filter_the_board_by_customer_and_state(kit: PortalKit) -> None:
    await kit.sign_in("olga")
    assert link_ids_in_order(await kit.page("/links?customer=globex")) == [
        "globex-nyc-1",
        "globex-bos-2",
    ]
    down = await kit.page("/links?status=down")
    assert link_ids_in_order(down) == ["acme-ber-2"]
    assert text_of(element(element(down, "p", "summary"), "span", "total")) == "1 link of 4"
    assert 'data-refresh-url="/partial/links?status=down"' in refresh_tag(down)
    bad = await kit.client.get("/links?status=purple")
    assert bad.status == 400
    message = "status='purple' is not allowed; use one of all, up, degraded, down, unknown"
    assert message in unescape(await bad.text())


async def test_link_detail_shows_probes_in_the_customers_time_zone(kit: PortalKit) -> None:
    await kit.sign_in("alice")
    icmp = probe_row(await kit.page("/links/acme-fra-1"), "icmp")
    assert '<span class="badge badge-up">Up</span>' in icmp
    assert "3\u00a0h ago" in icmp
    assert "2026-11-18 10:00 CET" in icmp  # 09:00 UTC in Berlin
    assert 'datetime="2026-11-18T09:00:00+00:00"' in icmp
    assert "12.3\u00a0ms" in icmp
    down = probe_row(await kit.page("/links/acme-ber-2"), "icmp")
    assert "25\u00a0min ago" in down
    assert "no reply (5/5 lost)" in down
    assert "100\u00a0%" in down


async def test_a_link_in_announced_maintenance_shows_blue_with_what_it_measures(
    kit: PortalKit,
) -> None:
    from collector import upsert_maintenance
    from kernel.domain import MaintenanceWindow

    window = MaintenanceWindow(
        "mw-ber",
        NOW - timedelta(minutes=30),
        NOW + timedelta(hours=1),
        NOW - timedelta(days=5),
        "Router replacement in Berlin",
        link_ids=("acme-ber-2",),
    )
    await upsert_maintenance(kit.db, [window], source="config")
    await kit.sign_in("alice")
    html = await kit.page("/links")
    row = board_row(html, "acme-ber-2")
    assert 'class="row-maintenance"' in row
    assert '<span class="badge badge-maintenance">Maintenance</span>' in row
    assert '<span class="under">Down</span>' in row


async def test_text_from_config_is_escaped(kit: PortalKit) -> None:
    await kit.sign_in("alice")
    html = await kit.page("/links")
    assert "Berlin data centre &lt;backup&gt;" in board_row(html, "acme-ber-2")
    assert "<backup>" not in html


async def test_page_refreshes_with_a_static_script_and_a_noscript_fallback(
    kit: PortalKit,
) -> None:
    await kit.sign_in("olga")
    html = await kit.page("/links")
    assert 'data-refresh-url="/partial/links"' in refresh_tag(html)
    assert 'data-refresh-seconds="15"' in refresh_tag(html)
    head = re.search(r"<head>.*?</head>", html, flags=re.S)
    assert head
    assert re.search(r'<script src="/static/refresh\.js[^"]*" defer></script>', head.group(0))
    assert '<noscript><meta http-equiv="refresh" content="15"></noscript>' in head.group(0)
    assert "<script>" not in html
    script = await kit.client.get("/static/refresh.js")
    assert script.status == 200
    assert "javascript" in script.headers["Content-Type"]
    css = await kit.client.get("/static/portal.css")
    assert css.status == 200
    assert css.headers["Content-Type"].startswith("text/css")


async def test_new_samples_reach_the_board(kit: PortalKit) -> None:
    await kit.sign_in("gus")
    assert 'class="row-unknown"' in board_row(await kit.page("/links"), "globex-bos-2")
    await kit.store(
        samples("globex-bos-2", minutes(NOW - timedelta(minutes=10), NOW), rtt_ms=3.0, loss_pct=0)
    )
    row = board_row(await kit.page("/links"), "globex-bos-2")
    assert 'class="row-up"' in row


# --- sessions and CSRF --------------------------------------------------------------------


async def test_post_without_csrf_token_is_forbidden(kit: PortalKit) -> None:
    await kit.client.get("/login")  # has the login token cookie, but sends no token
    response = await kit.client.post(
        "/login", data={"username": "alice", "password": "alice-pw-1234"}, allow_redirects=False
    )
    assert response.status == 403
    assert "linkwatch_session" not in response.cookies

    token = await kit.sign_in("alice")
    forged = await kit.client.post("/logout", data={"csrf_token": "x" + token})
    assert forged.status == 403
    missing = await kit.client.post("/logout", data={})
    assert missing.status == 403
    assert (await kit.client.get("/links", allow_redirects=False)).status == 200


async def test_login_token_must_match_its_cookie(kit: PortalKit) -> None:
    page = await kit.client.get("/login")
    token = form_token(await page.text())
    kit.client.session.cookie_jar.clear()
    response = await kit.client.post(
        "/login",
        data={"csrf_token": token, "username": "alice", "password": "alice-pw-1234"},
        allow_redirects=False,
    )
    assert response.status == 403


async def test_a_sign_in_form_lasts_a_day_and_no_longer(kit: PortalKit) -> None:
    async def sign_in_after(delay: timedelta) -> ClientResponse:
        page = await kit.client.get("/login")
        token = form_token(await page.text())
        kit.clock.advance(delay)
        return await kit.client.post(
            "/login",
            data={"csrf_token": token, "username": "alice", "password": "alice-pw-1234"},
            allow_redirects=False,
        )

    assert (await sign_in_after(timedelta(hours=23))).status == 303  # a tab from the morning
    await kit.sign_out()
    stale = await sign_in_after(timedelta(hours=24, minutes=1))
    assert stale.status == 403
    assert "linkwatch_session" not in stale.cookies
    assert (await kit.login("alice")).status == 303  # a fresh form


async def test_session_cookie_is_http_only_and_same_site(kit: PortalKit) -> None:
    response = await kit.login("alice")
    cookies = [c for c in response.headers.getall("Set-Cookie") if "linkwatch_session=" in c]
    assert len(cookies) == 1
    attributes = [part.strip().lower() for part in cookies[0].split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert f"max-age={int(TTL.total_seconds())}" in attributes
    assert "secure" not in attributes  # plain HTTP here; set when the request is HTTPS


async def test_behind_an_https_proxy_cookies_are_secure_and_hsts_is_sent(
    database: Database,
) -> None:
    settings = PortalSettings(session_ttl=TTL, cache_ttl=timedelta(0), behind_https_proxy=True)
    async with running_portal(database, settings=settings, history=None) as kit:
        page = await kit.client.get("/login")
        assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
        (cookie,) = page.headers.getall("Set-Cookie")
        # The sign-in form's cookie, and so the session's after it: a browser sends them
        # back over HTTPS only (this plain-HTTP test client keeps them to itself).
        assert "secure" in [part.strip().lower() for part in cookie.split(";")]


async def test_sessions_are_stored_as_digests_only(kit: PortalKit) -> None:
    response = await kit.login("alice")
    session_id = response.cookies["linkwatch_session"].value
    async with kit.db.connection() as conn:
        cur = await conn.execute("SELECT id_digest::text, csrf_token FROM portal_sessions")
        stored = await cur.fetchall()
    assert len(stored) == 1
    assert session_id not in repr(stored)


async def test_login_rotates_the_session_id(kit: PortalKit) -> None:
    first = await kit.login("alice")
    old_id = first.cookies["linkwatch_session"].value
    second = await kit.login("olga")
    new_id = second.cookies["linkwatch_session"].value
    assert new_id != old_id
    kit.client.session.cookie_jar.clear()
    kit.client.session.cookie_jar.update_cookies({"linkwatch_session": old_id})
    assert (await kit.client.get("/links", allow_redirects=False)).status == 303


async def test_logout_ends_the_session(kit: PortalKit) -> None:
    token = await kit.sign_in("olga")
    session_id = kit.client.session.cookie_jar.filter_cookies(kit.client.make_url("/"))[
        "linkwatch_session"
    ].value
    response = await kit.client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login"
    assert (await kit.client.get("/links", allow_redirects=False)).status == 303
    # The old id is dead on the server, not just forgotten by this browser.
    kit.client.session.cookie_jar.update_cookies({"linkwatch_session": session_id})
    assert (await kit.client.get("/links", allow_redirects=False)).status == 303


async def test_session_expires_after_its_ttl(kit: PortalKit) -> None:
    await kit.sign_in("olga")
    kit.clock.advance(TTL - timedelta(seconds=1))
    assert (await kit.client.get("/links", allow_redirects=False)).status == 200
    kit.clock.advance(timedelta(seconds=1))
    assert (await kit.client.get("/links", allow_redirects=False)).status == 303


async def test_sessions_survive_a_portal_restart(database: Database) -> None:
    async with running_portal(database) as first:
        response = await first.login("alice")
        session_id = response.cookies["linkwatch_session"].value
    async with running_portal(database, history=None) as second:
        second.client.session.cookie_jar.update_cookies({"linkwatch_session": session_id})
        assert (await second.client.get("/links", allow_redirects=False)).status == 200


async def test_repeated_failures_throttle_the_account(kit: PortalKit) -> None:
    for _ in range(5):
        assert (await kit.login("alice", "wrong")).status == 401
    # Even the right password is refused now, with a clear message.
    throttled = await kit.login("alice")
    assert throttled.status == 429
    assert sign_in_alert(await throttled.text()).startswith("Too many failed sign-in attempts")
    assert int(throttled.headers["Retry-After"]) == 15 * 60
    assert "linkwatch_session" not in throttled.cookies
    # Other accounts are not affected, and unknown names are throttled alike.
    assert (await kit.login("olga")).status == 303
    for _ in range(5):
        assert (await _attempt(kit, "nobody", "guess")).status == 401
    assert (await _attempt(kit, "nobody", "guess")).status == 429
    # The window passes.
    kit.clock.advance(timedelta(minutes=15))
    assert (await kit.login("alice")).status == 303


async def test_many_failures_from_one_address_throttle_every_account(database: Database) -> None:
    settings = PortalSettings(
        session_ttl=TTL, cache_ttl=timedelta(0), login_max_failures_per_address=8
    )
    async with running_portal(database, settings=settings, history=None) as kit:
        # A password spray: a few guesses at each of many names, from one address.
        for name in ("a1", "a2", "a3", "a4"):
            for _ in range(2):
                assert (await _attempt(kit, name, "guess")).status == 401
        assert (await _attempt(kit, "olga", "olga-pw-1234")).status == 429


Answer = tuple[int, str | None]  # status, Retry-After


async def _guesses(
    kit: PortalKit,
    name: str,
    password: str,
    addresses: Sequence[str],
    headers: Mapping[str, str] | None = None,
) -> list[Answer]:
    """Sign-ins as `name`, one from each loopback address, sent all at once (each after
    fetching its own sign-in form), as a guesser with many machines would."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(local_addr=(address, 0)),
                    cookie_jar=aiohttp.CookieJar(unsafe=True),
                )
            )
            for address in addresses
        ]
        url = kit.client.make_url("/login")
        tokens = []
        for client in clients:
            async with client.get(url) as page:
                tokens.append(form_token(await page.text()))

        async def post(client: aiohttp.ClientSession, token: str) -> Answer:
            data = {"csrf_token": token, "username": name, "password": password}
            async with client.post(
                url, data=data, headers=headers, allow_redirects=False
            ) as response:
                return response.status, response.headers.get("Retry-After")

        return await asyncio.gather(*map(post, clients, tokens))


def _addresses(first: int, count: int) -> list[str]:
    return [f"127.0.{n // 250}.{n % 250 + 2}" for n in range(first, first + count)]


async def test_simultaneous_guesses_get_no_more_checks_than_allowed(database: Database) -> None:
    async with running_portal(database, history=None) as kit:
        ceiling = kit.client.app[SETTINGS].login_account_ceiling
        answers = await _guesses(kit, "ada", "a-guess-1234", _addresses(0, 40))
        statuses = [status for status, _ in answers]
        # Exactly as many were checked as the account allows; the others were turned
        # away before their password was looked at, told when to come back.
        assert statuses.count(401) == ceiling
        assert statuses.count(429) == 40 - ceiling
        assert all(0 < int(wait or 0) <= 30 for status, wait in answers if status == 429)
        async with kit.db.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM login_failures")
            assert await cur.fetchone() == (ceiling,)


async def test_guessing_from_elsewhere_locks_nobody_out(database: Database) -> None:
    async with running_portal(database, history=None) as kit:
        home, guesser, travelling = "127.0.9.1", "127.0.9.66", "127.0.9.7"
        assert await _guesses(kit, "ada", PASSWORDS["ada"], [home]) == [(303, None)]

        async def attack(name: str) -> list[Answer]:
            """What a guesser sees: first from one address, then from a crowd."""
            alone = [(await _guesses(kit, name, f"guess-{n}-abcd", [guesser]))[0] for n in range(6)]
            crowd = await _guesses(kit, name, "guess-crowd", _addresses(100, 30))
            return alone + sorted(crowd, key=str)  # which of the crowd came first varies

        seen = await attack("ada")
        # The guesser's own address is refused for the whole window, and only for ada...
        assert [status for status, _ in seen[:6]] == [401] * 5 + [429]
        assert seen[5][1] == str(15 * 60)
        # ...while the crowd is slowed: past the account's ceiling, one guess per 30 s.
        crowd = [status for status, _ in seen[6:]]
        assert crowd.count(401) == kit.client.app[SETTINGS].login_account_ceiling - 5
        assert {wait for status, wait in seen[6:] if status == 429} == {"30"}

        # Ada signs in from home at once, and from a new address after the short wait.
        assert await _guesses(kit, "ada", PASSWORDS["ada"], [home]) == [(303, None)]
        assert await _guesses(kit, "ada", PASSWORDS["ada"], [travelling]) == [(429, "30")]
        kit.clock.advance(timedelta(seconds=30))
        assert await _guesses(kit, "ada", PASSWORDS["ada"], [travelling]) == [(303, None)]

        # A name nobody has is answered exactly alike: throttling tells no one who exists.
        kit.clock.advance(timedelta(minutes=15))
        assert await attack("nobody") == seen


async def test_an_account_keeps_its_ten_latest_addresses_until_its_password_changes(
    database: Database,
) -> None:
    async with running_portal(database, history=None) as kit:
        places = _addresses(200, 12)
        for place in places:
            kit.clock.advance(timedelta(minutes=1))
            assert await _guesses(kit, "olga", PASSWORDS["olga"], [place]) == [(303, None)]
        kit.clock.advance(timedelta(minutes=1))
        await _guesses(kit, "olga", "a-guess-1234", _addresses(300, 20))  # the ceiling
        # The two oldest addresses are forgotten: slowed like any other new address.
        assert await _guesses(kit, "olga", PASSWORDS["olga"], places[:1]) == [(429, "30")]
        assert await _guesses(kit, "olga", PASSWORDS["olga"], places[2:3]) == [(303, None)]

        # A new password starts afresh: no address is known any more.
        accounts = kit.client.app[ACCOUNTS]
        await accounts.add_user("carol", "ops", None, "carol-pw-12345", kit.clock())
        home = places[-1:]
        assert await _guesses(kit, "carol", "carol-pw-12345", home) == [(303, None)]
        await _guesses(kit, "carol", "a-guess-1234", _addresses(300, 20))
        assert await _guesses(kit, "carol", "carol-pw-12345", home) == [(303, None)]
        await accounts.set_password("carol", "carol-pw-67890", kit.clock())
        assert await _guesses(kit, "carol", "carol-pw-67890", home) == [(429, "30")]


async def test_behind_a_trusted_proxy_its_clients_are_told_apart(database: Database) -> None:
    settings = PortalSettings(
        session_ttl=TTL, cache_ttl=timedelta(0), trusted_proxies=(ip_network("127.0.9.0/30"),)
    )
    async with running_portal(database, settings=settings, history=None) as kit:
        proxy, direct = "127.0.9.1", "127.0.9.9"

        def forwarded(client: str) -> dict[str, str]:
            # What the client claims, then what each proxy on the way saw.
            return {"X-Forwarded-For": f"127.0.0.77, {client}, 127.0.9.2"}

        for n in range(5):
            wrong = await _guesses(kit, "ada", f"guess-{n}-abcd", [proxy], forwarded("127.0.5.5"))
            assert wrong == [(401, None)]
        refused = await _guesses(kit, "ada", PASSWORDS["ada"], [proxy], forwarded("127.0.5.5"))
        assert refused == [(429, str(15 * 60))]
        # Another client of the same proxy is someone else.
        taken = await _guesses(kit, "ada", PASSWORDS["ada"], [proxy], forwarded("127.0.5.6"))
        assert taken == [(303, None)]
        # Anyone else's X-Forwarded-For is their own text: it changes nothing.
        for n in range(5):
            claim = {"X-Forwarded-For": f"127.0.6.{n}"}
            assert await _guesses(kit, "olga", "guess-abcd", [direct], claim) == [(401, None)]
        claim = {"X-Forwarded-For": "127.0.6.99"}
        [(status, _)] = await _guesses(kit, "olga", PASSWORDS["olga"], [direct], claim)
        assert status == 429


def test_a_trusted_proxy_is_an_address_or_a_network() -> None:
    text = "portal: {trusted_proxies: [127.0.0.1, 127.0.0.0/8, '::1', 127.0.0.1/8]}\n"
    with pytest.raises(ConfigError) as raised:
        parse_config(text, source="proxies.yaml")
    assert str(raised.value).splitlines()[1:] == [
        "  proxies.yaml:1: portal.trusted_proxies[3]: '127.0.0.1/8' is not an IP address or "
        "network; write an address such as 127.0.0.1 or ::1, or a network without host bits "
        "such as 127.0.0.0/8"
    ]
    proxies = parse_config(text.replace(", 127.0.0.1/8", ""), source="proxies.yaml").portal
    assert PortalSettings.from_config(proxies).trusted_proxies == (
        ip_network("127.0.0.1/32"),
        ip_network("127.0.0.0/8"),
        ip_network("::1/128"),
    )


def test_an_ipv6_subscriber_counts_as_one_address() -> None:
    # Its whole /64 is one address for throttling (its privacy addresses change daily,
    # and a guesser with a /64 has 2^64 of them); IPv4, mapped or not, as it is.
    assert address_key("::1") == address_key("::ffff:ffff:ffff:ffff") == "::/64"
    assert address_key("::1:0:0:0:1") == "0:0:0:1::/64"
    assert address_key("::ffff:127.0.0.5") == address_key("127.0.0.5") == "127.0.0.5"
    assert address_key(None) == "unknown"


async def _attempt(kit: PortalKit, name: str, password: str) -> ClientResponse:
    """A sign-in as any name, known to the config or not."""
    page = await kit.client.get("/login")
    return await kit.client.post(
        "/login",
        data={"csrf_token": form_token(await page.text()), "username": name, "password": password},
        allow_redirects=False,
    )


# --- accounts and API tokens --------------------------------------------------------------


def token_row(html: str, label: str) -> str:
    """The row of the token named `label` in the account page's table of tokens."""
    return table_row(element(html, "table", "tokens"), f'<td data-label="Name">{label}</td>')


async def test_an_api_token_is_shown_once_works_and_can_be_revoked(kit: PortalKit) -> None:
    token = await kit.sign_in("alice")
    created = await kit.client.post(
        "/account/tokens", data={"csrf_token": token, "label": "reporting", "expires_days": "30"}
    )
    html = await created.text()
    secret = re.search(r'<code class="token" id="new-token">(lw_[^<]+)</code>', html)
    assert secret, html
    assert "cannot be shown again" in text_of(element(html, "div", "secret"))
    again = await kit.page("/account")
    assert secret.group(1) not in again
    reporting = token_row(again, "reporting")
    api = kit.client.session
    headers = {"Authorization": f"Bearer {secret.group(1)}"}
    me = await api.get(kit.client.make_url("/api/v1/me"), headers=headers)
    assert me.status == 200
    assert await me.json() == {"name": "alice", "role": "customer", "customer": "acme"}
    token_id = re.search(r'action="/account/tokens/(\d+)/revoke"', reporting)
    assert token_id
    revoked = await kit.client.post(
        f"/account/tokens/{token_id.group(1)}/revoke",
        data={"csrf_token": token},
        allow_redirects=False,
    )
    assert revoked.status == 303
    denied = await api.get(kit.client.make_url("/api/v1/me"), headers=headers)
    assert denied.status == 401
    assert (await denied.json())["error"]["status"] == 401


async def test_nobody_revokes_another_users_token(kit: PortalKit) -> None:
    token = await kit.sign_in("alice")
    await kit.client.post(
        "/account/tokens", data={"csrf_token": token, "label": "mine", "expires_days": "30"}
    )
    token_id = re.search(
        r'action="/account/tokens/(\d+)/revoke"', token_row(await kit.page("/account"), "mine")
    )
    assert token_id
    await kit.sign_out()
    gus_token = await kit.sign_in("gus")
    response = await kit.client.post(
        f"/account/tokens/{token_id.group(1)}/revoke", data={"csrf_token": gus_token}
    )
    assert response.status == 404
    await kit.sign_out()
    await kit.sign_in("alice")
    assert cell(token_row(await kit.page("/account"), "mine"), "State") == "active"


async def test_the_api_takes_no_cookies(kit: PortalKit) -> None:
    await kit.sign_in("olga")
    response = await kit.client.get("/api/v1/me")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- hardening ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/login", "/healthz", "/static/portal.css", "/no-such-page", "/api/v1/nothing"]
)
async def test_security_headers_on_every_response(kit: PortalKit, path: str) -> None:
    response = await kit.client.get(path)
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert "aiohttp" not in headers.get("Server", "")


async def test_signed_in_pages_are_not_cached(kit: PortalKit) -> None:
    await kit.sign_in("olga")
    response = await kit.client.get("/links")
    assert response.headers["Cache-Control"] == "no-store"


async def test_malformed_requests_get_4xx_not_500(kit: PortalKit) -> None:
    client = kit.client
    await client.get("/login")
    bad_utf8 = await client.post(
        "/login",
        data=b"username=%FF%FE&password=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert bad_utf8.status == 400
    bad_charset = await client.post(
        "/login",
        data=b"username=a",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=no-such"},
    )
    assert bad_charset.status == 400
    multipart = await client.post(
        "/login",
        data=b"--x\r\ngarbage",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert multipart.status == 415
    json_body = await client.post("/login", json={"username": "alice"})
    assert json_body.status == 415
    huge = await client.post(
        "/login",
        data=b"a=" + b"x" * (1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert huge.status == 413
    wrong_method = await client.put("/login", data=b"")
    assert wrong_method.status == 405
    assert "GET" in wrong_method.headers["Allow"]
    long_cookie = await client.get(
        "/links", headers={"Cookie": "linkwatch_session=" + "x" * 4000}, allow_redirects=False
    )
    assert long_cookie.status == 303
    for response in (bad_utf8, bad_charset, multipart, huge, wrong_method):
        body = await response.text()
        assert "Traceback" not in body
        assert heading(body)


async def _raw_request(kit: PortalKit, head: bytes) -> tuple[int, bytes]:
    assert kit.client.port is not None
    return await _raw_request_to(kit.client.port, head)


async def _raw_request_to(port: int, head: bytes) -> tuple[int, bytes]:
    """Send request bytes as they are (aiohttp's client will not send some of them) and
    return the answer's status and head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(answer.split(b" ", 2)[1]), answer.split(b"\r\n\r\n", 1)[0]


def _get(path: str, *headers: bytes) -> bytes:
    lines = [f"GET {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def test_header_bytes_that_are_not_utf8_sign_nobody_in_and_break_nothing(
    kit: PortalKit,
) -> None:
    # A session cookie or token with such bytes is simply not one of ours.
    status, head = await _raw_request(kit, _get("/links", b"Cookie: linkwatch_session=\xff\xfe"))
    assert status == 303
    assert b"Location: /login?next=/links" in head
    status, _ = await _raw_request(kit, _get("/api/v1/me", b"Authorization: Bearer lw_\xff\xfe"))
    assert status == 401
    status, _ = await _raw_request(kit, _get("/api/v1/me", b"Authorization: \xff\xfe lw_x"))
    assert status == 401
    status, head = await _raw_request(
        kit, _get("/login", b"Cookie: linkwatch_login_csrf=\xff.\xfe")
    )
    assert status == 200
    assert b"Set-Cookie: linkwatch_login_csrf=" in head  # a fresh sign-in form
    # Signing in over a leftover session cookie with such bytes replaces it.
    page = await kit.client.get("/login")
    token = form_token(await page.text()).encode()
    body = b"username=alice&password=alice-pw-1234&csrf_token=" + token
    status, head = await _raw_request(
        kit,
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Cookie: linkwatch_session=\xff\xfe; linkwatch_login_csrf=" + token + b"\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
    )
    assert status == 303
    assert b"Set-Cookie: linkwatch_session=" in head
    # Another application's cookie on the same host does not sign anybody out.
    response = await kit.login("alice")
    session_id = response.cookies["linkwatch_session"].value.encode()
    cookie = b"Cookie: other-app=\xe9t\xe9; linkwatch_session=" + session_id
    status, _ = await _raw_request(kit, _get("/links", cookie))
    assert status == 200


async def test_api_errors_are_json(kit: PortalKit) -> None:
    response = await kit.client.get("/api/v1/nothing")
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert (await response.json())["error"]["status"] == 404


async def test_failures_never_leak_internals(
    kit: PortalKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    await kit.sign_in("olga")

    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError('relation "samples" does not exist: SELECT * FROM samples')

    async def database_away(*args: object, **kwargs: object) -> object:
        raise DatabaseError("connection refused: postgresql://linkwatch:secret@db/linkwatch")

    for failure, status in ((broken, 500), (database_away, 503)):
        monkeypatch.setattr(reads, "current_link_states", failure)
        response = await kit.client.get("/links")
        assert response.status == status
        body = await response.text()
        for leak in ("SELECT", "Traceback", "secret", "postgresql", "RuntimeError"):
            assert leak not in body
        assert "Content-Security-Policy" in response.headers


async def test_customer_with_no_links_sees_an_empty_page(database: Database) -> None:
    config = portal_config()
    config = config.model_copy(
        update={"links": [link for link in config.links if link.customer != "globex"]}
    )
    async with running_portal(database, config) as kit:
        await kit.sign_in("gus")
        html = await kit.page("/links")
        assert text_of(element(html, "p", "empty")) == "No links to show."
        assert text_of(element(html, "span", "total")) == "0 links"


async def test_operational_notices_reach_staff_but_never_customers(kit: PortalKit) -> None:
    kit.notices.append("1,200 samples are waiting in the disk spool")
    await kit.sign_in("olga")
    notice = element(await kit.page("/links"), "p", "notice")
    assert text_of(notice) == "1,200 samples are waiting in the disk spool"
    await kit.sign_out()
    await kit.sign_in("alice")
    assert "disk spool" not in await kit.page("/links")


async def test_down_samples_count_only_after_confirmation(kit: PortalKit) -> None:
    # One lost burst on an up link is not an outage (confirm: 2 by default).
    await kit.store(samples("acme-fra-1", [NOW], Outcome.DOWN, loss_pct=100.0, error="lost"))
    kit.clock.advance(timedelta(seconds=30))
    await kit.sign_in("alice")
    row = board_row(await kit.page("/links"), "acme-fra-1")
    assert 'class="row-up"' in row


async def test_a_large_board_comes_in_pages_of_a_hundred(database: Database) -> None:
    config = portal_config()
    extra = [
        link.model_copy(update={"id": f"acme-site-{n:03d}", "description": f"Site {n}"})
        for n in range(230)
        for link in config.links[:1]
    ]
    config = config.model_copy(update={"links": [*config.links, *extra]})
    async with running_portal(database, config) as kit:
        await kit.sign_in("olga")
        first = await kit.page("/links")
        assert len(link_ids_in_order(first)) == 100
        assert link_ids_in_order(first)[0] == "acme-ber-2"  # worst first, across pages
        pager = element(first, "nav", "pager")
        assert "1–100 of 234" in text_of(pager)
        assert 'href="/links?page=2#board"' in pager
        last = await kit.page("/links?page=3")
        assert len(link_ids_in_order(last)) == 34
        assert 'data-refresh-url="/partial/links?page=3"' in refresh_tag(last)
        fragment = await kit.page("/partial/links?page=3")
        assert link_ids_in_order(fragment) == link_ids_in_order(last)
        beyond = await kit.page("/links?page=9")  # past the end: the last page
        assert link_ids_in_order(beyond) == link_ids_in_order(last)
        assert (await kit.client.get("/links?page=0")).status == 400


# --- a portal process -----------------------------------------------------------------------


def _process_config(directory: Path, url: str, port: int, portal: str = "") -> Path:
    """A config for `linkwatch run --role portal` on the tests' database."""
    path = directory / f"linkwatch-{port}.yaml"
    hashed = FAST_HASHER.hash(PASSWORDS["ada"])
    path.write_text(
        f"""
database: {{url: "{url}"}}
data_dir: {directory / "data"}
portal: {{listen: "127.0.0.1:{port}"{portal}}}
customers: [{{id: acme, name: Acme Corp}}]
links: [{{id: acme-hq, customer: acme, probes: [{{id: ping, kind: icmp, host: 127.0.0.1}}]}}]
users: [{{name: ada, role: admin, password_hash: "{hashed}"}}]
"""
    )
    return path


@contextlib.asynccontextmanager
async def _portal_process(config: Path, log: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    proc = start_linkwatch("run", "--role", "portal", "--config", str(config), log=log)
    with stopped_after(proc, log):
        await until("the portal", lambda: "portal listening" in log.read_text(), proc, log, 60)
        yield proc


async def _sign_in_form(session: aiohttp.ClientSession, base: str) -> str:
    async with session.get(f"{base}/login") as page:
        return form_token(await page.text())


async def _sign_in(session: aiohttp.ClientSession, base: str, token: str, name: str) -> int:
    data = {"csrf_token": token, "username": name, "password": PASSWORDS["ada"]}
    async with session.post(f"{base}/login", data=data, allow_redirects=False) as response:
        return response.status


async def test_the_log_keeps_one_line_per_event_whatever_clients_send(
    database: Database, embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    port = free_port()
    base, log = f"http://127.0.0.1:{port}", tmp_path / "portal.log"
    forged = "1999-01-01T00:00:00.000Z INFO portal.pages.auth login user=ada role=admin"
    async with _portal_process(_process_config(tmp_path, embedded_postgres.url, port), log):
        async with browser() as session:
            token = await _sign_in_form(session, base)
            assert await _sign_in(session, base, token, f"mallory\n{forged}") == 401
        # Requests aiohttp cannot even parse: each is one line, not a traceback.
        for bad in (b"X: \x01", b"Y: 1\r\n Z", b"Content-Length: x"):
            status, _ = await _raw_request_to(port, _get("/", bad))
            assert status == 400
    text = log.read_text()
    assert "Traceback" not in text
    assert f'login failed user="mallory\\n{forged[:50]}' in text
    lines = text.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ ", line) for line in lines)
    assert not any(line.startswith("1999") for line in lines)
    assert len([line for line in lines if "bad request refused" in line]) == 3


def test_any_modules_line_stays_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    """Whatever logs a value from outside (here a receiver's answer, as notify does),
    the line stays one line and the terminal gets no escape sequences."""
    root = logging.getLogger()
    kept = root.handlers[:], root.level
    try:
        setup_logging("info")
        answer = "502 Bad Gateway\n1999-01-01T00:00:00.000Z INFO forged\x1b[2J"
        logging.getLogger("notify.dispatcher").warning("notification failed error=%s", answer)
        logging.getLogger("notify.dispatcher").warning("event=%(id)s", {"id": "a\rb"})
    finally:
        root.handlers[:], root.level = kept
    lines = capfd.readouterr().err.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "WARNING notify.dispatcher notification failed error=502 Bad Gateway\\n"
        "1999-01-01T00:00:00.000Z INFO forged\\x1b[2J",
        "WARNING notify.dispatcher event=a\\rb",
    ]


@contextlib.asynccontextmanager
async def _portal_processes(*runs: tuple[Path, Path]) -> AsyncIterator[None]:
    """`linkwatch run --role portal` with each (config, log), all started at once."""
    with contextlib.ExitStack() as running:
        procs = []
        for config, log in runs:
            proc = start_linkwatch("run", "--role", "portal", "--config", str(config), log=log)
            procs.append((running.enter_context(stopped_after(proc, log)), log))
        for proc, log in procs:
            await until(
                "the portal", lambda log=log: "portal listening" in log.read_text(), proc, log, 60
            )
        yield


async def test_a_sign_in_form_opened_before_a_restart_signs_in_after_it(
    database: Database, embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    port = free_port()
    base, config = (
        f"http://127.0.0.1:{port}",
        _process_config(tmp_path, embedded_postgres.url, port),
    )
    async with browser() as session:
        async with _portal_processes((config, tmp_path / "before.log")):
            token = await _sign_in_form(session, base)
        async with _portal_processes((config, tmp_path / "after.log")):
            assert await _sign_in(session, base, token, "ada") == 303
    kept = tmp_path / "data" / "portal-secret"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


async def test_portal_processes_on_one_data_dir_take_each_others_forms(
    database: Database, embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    ports = free_port(), free_port()
    configs = [_process_config(tmp_path, embedded_postgres.url, port) for port in ports]
    first, second = (f"http://127.0.0.1:{port}" for port in ports)
    async with _portal_processes(*((c, tmp_path / f"{n}.log") for n, c in enumerate(configs))):
        for opened, sent in ((first, second), (second, first)):
            async with browser() as session:
                token = await _sign_in_form(session, opened)
                # Cookies know no ports: the form's cookie goes to the other process
                # too, as it would through a load balancer in front of both.
                assert await _sign_in(session, sent, token, "ada") == 303
    assert len(list((tmp_path / "data").iterdir())) == 1  # the secret, and nothing half-made


def test_a_portal_secret_others_can_read_is_refused(
    database: Database, embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    config = _process_config(tmp_path, embedded_postgres.url, free_port())
    kept = tmp_path / "data" / "portal-secret"
    kept.parent.mkdir()
    kept.write_text("k" * 43 + "\n")
    kept.chmod(0o644)
    result = linkwatch("run", "--role", "portal", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert (
        f"{kept}: the portal secret can be read by other users (mode 0644); "
        f"make it private with `chmod 600 {kept}`, or set portal.secret_key"
    ) in result.stderr
    assert "Traceback" not in result.stderr
    kept.chmod(0o600)
    kept.write_text("too short\n")
    result = linkwatch("run", "--role", "portal", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert (
        f"{kept}: the portal secret has 9 characters, at least 32 are needed; remove the "
        "file to have a new one made, or set portal.secret_key"
    ) in result.stderr
