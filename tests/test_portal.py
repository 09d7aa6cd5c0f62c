"""The portal over real HTTP on loopback, with a fake source of link states.

The accounts, customers and links are plain objects of the shape the config gives; the
states come from an async function, so these tests say nothing about the database (the
end-to-end test does).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from linkwatch.domain import LinkState, LinkStatus, ProbeState
from linkwatch.errors import DatabaseError
from portal import PortalSettings, create_app

HASHER = PasswordHasher(time_cost=1, memory_cost=1024)
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=8)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password: str
    customer: str | None = None
    disabled: bool = False
    password_hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "password_hash", HASHER.hash(self.password))


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Link:
    id: str
    customer: str
    description: str


USERS = [
    User("alice", "customer", "alice-pw-1", customer="acme"),
    User("gus", "customer", "gus-pw-1", customer="globex"),
    User("olga", "ops", "olga-pw-1"),
    User("dave", "customer", "dave-pw-1", customer="acme", disabled=True),
]
CUSTOMERS = [
    Customer("acme", "Acme Corp", "Europe/Berlin"),
    Customer("globex", "Globex Inc", "America/New_York"),
]
LINKS = [
    Link("acme-fra-1", "acme", "Frankfurt office, 1 Gbit/s fibre"),
    Link("acme-ber-2", "acme", "Berlin data centre <backup>"),
    Link("globex-nyc-1", "globex", "New York HQ"),
    Link("globex-bos-2", "globex", "Boston branch"),  # no state: shows as unknown
]


def probe(status: LinkStatus, since: datetime, **measured: float | str | None) -> ProbeState:
    return ProbeState(
        probe_id="icmp",
        kind="icmp",
        status=status,
        since=since,
        last_observed_at=NOW - timedelta(seconds=20),
        **measured,  # type: ignore[arg-type]
    )


STATES = {
    "acme-fra-1": LinkState(
        "acme-fra-1",
        "acme",
        "",
        LinkStatus.UP,
        NOW - timedelta(hours=3),
        (probe(LinkStatus.UP, NOW - timedelta(hours=3), rtt_ms=12.34, loss_pct=0.0),),
    ),
    "acme-ber-2": LinkState(
        "acme-ber-2",
        "acme",
        "",
        LinkStatus.DOWN,
        NOW - timedelta(minutes=25),
        (probe(LinkStatus.DOWN, NOW - timedelta(minutes=25), loss_pct=100.0, error="timeout"),),
    ),
    "globex-nyc-1": LinkState(
        "globex-nyc-1",
        "globex",
        "",
        LinkStatus.DEGRADED,
        NOW - timedelta(days=2, hours=1),
        (probe(LinkStatus.DEGRADED, NOW - timedelta(days=2), rtt_ms=180.0, loss_pct=2.5),),
    ),
}


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Portal:
    client: TestClient  # type: ignore[type-arg]
    clock: FakeClock
    asked_for: list[list[str]]  # link ids of each call to the state source


StateSourceFn = Callable[[list[Link], datetime], Awaitable[list[LinkState]]]


async def make_portal(
    states: StateSourceFn | None = None, *, links: Sequence[Link] = LINKS
) -> AsyncIterator[Portal]:
    clock = FakeClock(NOW)
    asked_for: list[list[str]] = []

    async def fake_states(links: list[Link], now: datetime) -> list[LinkState]:
        asked_for.append([link.id for link in links])
        return [STATES[link.id] for link in links if link.id in STATES]

    app = create_app(
        PortalSettings(session_ttl=TTL, refresh=timedelta(seconds=15)),
        users=USERS,
        customers=CUSTOMERS,
        links=links,
        states=states or fake_states,
        clock=clock,
    )
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield Portal(client, clock, asked_for)


@pytest.fixture
async def portal() -> AsyncIterator[Portal]:
    async for p in make_portal():
        yield p


def form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def login(
    client: TestClient,  # type: ignore[type-arg]
    name: str,
    password: str,
    **extra: str,
) -> ClientResponse:
    page = await client.get("/login")
    token = form_token(await page.text())
    return await client.post(
        "/login",
        data={"csrf_token": token, "username": name, "password": password, **extra},
        allow_redirects=False,
    )


async def signed_in(portal: Portal, name: str, password: str) -> str:
    """Signs in and returns the session's CSRF token, read from the links page."""
    response = await login(portal.client, name, password)
    assert response.status == 303, await response.text()
    page = await portal.client.get("/")
    assert page.status == 200
    return form_token(await page.text())


def link_ids_in_order(html: str) -> list[str]:
    return re.findall(r'<a class="link-id" href="/links/([^"]+)">', html)


# --- health and sign-in ------------------------------------------------------------------


async def test_healthz_answers_without_login(portal: Portal) -> None:
    response = await portal.client.get("/healthz")
    assert response.status == 200
    assert await response.text() == "ok\n"


async def test_pages_send_anonymous_visitors_to_sign_in(portal: Portal) -> None:
    response = await portal.client.get("/links/acme-fra-1", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=/links/acme-fra-1"
    fragment = await portal.client.get("/partial/links")
    assert fragment.status == 401
    assert portal.asked_for == []


async def test_login_with_right_password_shows_links(portal: Portal) -> None:
    response = await login(portal.client, "alice", "alice-pw-1")
    assert response.status == 303
    assert response.headers["Location"] == "/"
    page = await portal.client.get("/")
    assert page.status == 200
    html = await page.text()
    assert "acme-fra-1" in html
    assert "alice" in html
    assert "Sign out" in html


async def test_login_returns_to_the_page_asked_for_but_never_off_site(portal: Portal) -> None:
    response = await login(portal.client, "olga", "olga-pw-1", next="/links/acme-ber-2")
    assert response.headers["Location"] == "/links/acme-ber-2"
    await portal.client.post("/logout", data={"csrf_token": form_token(await _page(portal))})
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = await login(portal.client, "olga", "olga-pw-1", next=hostile)
        assert response.headers["Location"] == "/"


async def _page(portal: Portal) -> str:
    return await (await portal.client.get("/")).text()


async def test_wrong_password_and_unknown_user_get_the_same_answer(portal: Portal) -> None:
    wrong = await login(portal.client, "alice", "not-her-password")
    unknown = await login(portal.client, "mallory", "alice-pw-1")
    for response in (wrong, unknown):
        assert response.status == 401
        assert "Wrong username or password." in await response.text()
        assert "linkwatch_session" not in response.cookies
    assert (await portal.client.get("/", allow_redirects=False)).status == 303


async def test_disabled_user_cannot_log_in(portal: Portal) -> None:
    response = await login(portal.client, "dave", "dave-pw-1")
    assert response.status == 401
    assert "Wrong username or password." in await response.text()
    assert (await portal.client.get("/", allow_redirects=False)).status == 303


# --- who sees what ------------------------------------------------------------------------


async def test_customer_sees_only_their_own_links(portal: Portal) -> None:
    await signed_in(portal, "alice", "alice-pw-1")
    html = await _page(portal)
    assert link_ids_in_order(html) == ["acme-ber-2", "acme-fra-1"]
    assert "globex" not in html.lower()
    assert "New York" not in html
    # Filtered before the states were even fetched.
    assert all(set(ids) <= {"acme-fra-1", "acme-ber-2"} for ids in portal.asked_for)
    fragment = await (await portal.client.get("/partial/links")).text()
    assert link_ids_in_order(fragment) == ["acme-ber-2", "acme-fra-1"]


async def test_other_customers_link_is_as_missing_as_a_nonexistent_one(portal: Portal) -> None:
    await signed_in(portal, "alice", "alice-pw-1")
    others = await portal.client.get("/links/globex-nyc-1")
    missing = await portal.client.get("/links/no-such-link")
    assert others.status == missing.status == 404
    assert await others.text() == await missing.text()
    assert "New York" not in await others.text()
    partial = await portal.client.get("/partial/links/globex-nyc-1")
    assert partial.status == 404
    assert all("globex-nyc-1" not in ids for ids in portal.asked_for)


async def test_ops_sees_every_link_worst_first(portal: Portal) -> None:
    await signed_in(portal, "olga", "olga-pw-1")
    html = await _page(portal)
    assert link_ids_in_order(html) == ["acme-ber-2", "globex-nyc-1", "globex-bos-2", "acme-fra-1"]
    summary = re.sub(r"<[^>]+>|\s+", " ", html.split('class="summary"')[1].split("</p>")[0])
    assert "4 links" in summary
    for count in ("1 down", "1 degraded", "1 unknown", "1 up"):
        assert count in summary
    assert "maintenance" not in summary
    for status, label in (("down", "Down"), ("degraded", "Degraded"), ("unknown", "Unknown")):
        assert f'<span class="badge badge-{status}">{label}</span>' in html
    assert "Acme Corp" in html
    assert "Globex Inc" in html


async def test_link_detail_shows_probes_in_the_customers_time_zone(portal: Portal) -> None:
    await signed_in(portal, "alice", "alice-pw-1")
    response = await portal.client.get("/links/acme-fra-1")
    assert response.status == 200
    html = await response.text()
    assert '<span class="badge badge-up">Up</span>' in html
    assert "3\u00a0h ago" in html
    assert "2024-05-01 11:00 CEST" in html  # 09:00 UTC in Berlin
    assert 'datetime="2024-05-01T09:00:00+00:00"' in html
    assert "12.3\u00a0ms" in html
    assert "icmp" in html
    down = await (await portal.client.get("/links/acme-ber-2")).text()
    assert "25\u00a0min ago" in down
    assert "timeout" in down
    assert "100\u00a0%" in down


async def test_a_start_older_than_the_samples_read_is_not_shown_as_a_change() -> None:
    bounded = LinkState(
        "acme-fra-1",
        "acme",
        "",
        LinkStatus.UP,
        NOW - timedelta(hours=2),
        (probe(LinkStatus.UP, NOW - timedelta(hours=2)),),
        since_exact=False,
    )

    async def states(links: list[Link], now: datetime) -> list[LinkState]:
        return [bounded] if any(link.id == "acme-fra-1" for link in links) else []

    async for portal in make_portal(states):
        await signed_in(portal, "alice", "alice-pw-1")
        html = await (await portal.client.get("/links/acme-fra-1")).text()
        assert "over 2\u00a0h ago" in html
        assert "at or before 2024-05-01 12:00 CEST" in html


async def test_text_from_config_is_escaped(portal: Portal) -> None:
    await signed_in(portal, "alice", "alice-pw-1")
    html = await _page(portal)
    assert "Berlin data centre &lt;backup&gt;" in html
    assert "<backup>" not in html


async def test_page_refreshes_with_a_static_script_and_a_noscript_fallback(
    portal: Portal,
) -> None:
    await signed_in(portal, "olga", "olga-pw-1")
    html = await _page(portal)
    assert 'data-refresh-url="/partial/links"' in html
    assert 'data-refresh-seconds="15"' in html
    assert re.search(r'<script src="/static/refresh\.js[^"]*" defer></script>', html)
    assert '<meta http-equiv="refresh" content="15">' in html
    assert "<script>" not in html
    script = await portal.client.get("/static/refresh.js")
    assert script.status == 200
    assert "javascript" in script.headers["Content-Type"]
    css = await portal.client.get("/static/portal.css")
    assert css.status == 200
    assert css.headers["Content-Type"].startswith("text/css")


# --- sessions and CSRF --------------------------------------------------------------------


async def test_post_without_csrf_token_is_forbidden(portal: Portal) -> None:
    await portal.client.get("/login")  # has the login token cookie, but sends no token
    response = await portal.client.post(
        "/login", data={"username": "alice", "password": "alice-pw-1"}, allow_redirects=False
    )
    assert response.status == 403
    assert "linkwatch_session" not in response.cookies

    token = await signed_in(portal, "alice", "alice-pw-1")
    forged = await portal.client.post("/logout", data={"csrf_token": "x" + token})
    assert forged.status == 403
    missing = await portal.client.post("/logout", data={})
    assert missing.status == 403
    assert (await portal.client.get("/", allow_redirects=False)).status == 200


async def test_login_token_must_match_its_cookie(portal: Portal) -> None:
    page = await portal.client.get("/login")
    token = form_token(await page.text())
    portal.client.session.cookie_jar.clear()
    response = await portal.client.post(
        "/login",
        data={"csrf_token": token, "username": "alice", "password": "alice-pw-1"},
        allow_redirects=False,
    )
    assert response.status == 403


async def test_session_cookie_is_http_only_and_same_site(portal: Portal) -> None:
    response = await login(portal.client, "alice", "alice-pw-1")
    cookies = [c for c in response.headers.getall("Set-Cookie") if "linkwatch_session=" in c]
    assert len(cookies) == 1
    attributes = [part.strip().lower() for part in cookies[0].split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert f"max-age={int(TTL.total_seconds())}" in attributes
    assert "secure" not in attributes  # plain HTTP here; set when the request is HTTPS


async def test_login_rotates_the_session_id(portal: Portal) -> None:
    first = await login(portal.client, "alice", "alice-pw-1")
    old_id = first.cookies["linkwatch_session"].value
    second = await login(portal.client, "olga", "olga-pw-1")
    new_id = second.cookies["linkwatch_session"].value
    assert new_id != old_id
    portal.client.session.cookie_jar.clear()
    portal.client.session.cookie_jar.update_cookies({"linkwatch_session": old_id})
    assert (await portal.client.get("/", allow_redirects=False)).status == 303


async def test_logout_ends_the_session(portal: Portal) -> None:
    token = await signed_in(portal, "olga", "olga-pw-1")
    session_id = portal.client.session.cookie_jar.filter_cookies(portal.client.make_url("/"))[
        "linkwatch_session"
    ].value
    response = await portal.client.post(
        "/logout", data={"csrf_token": token}, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == "/login"
    assert (await portal.client.get("/", allow_redirects=False)).status == 303
    # The old id is dead on the server, not just forgotten by this browser.
    portal.client.session.cookie_jar.update_cookies({"linkwatch_session": session_id})
    assert (await portal.client.get("/", allow_redirects=False)).status == 303


async def test_session_expires_after_its_ttl(portal: Portal) -> None:
    await signed_in(portal, "olga", "olga-pw-1")
    portal.clock.advance(TTL - timedelta(seconds=1))
    assert (await portal.client.get("/", allow_redirects=False)).status == 200
    portal.clock.advance(timedelta(seconds=1))
    assert (await portal.client.get("/", allow_redirects=False)).status == 303


async def test_repeated_failures_throttle_the_account(portal: Portal) -> None:
    for _ in range(5):
        assert (await login(portal.client, "alice", "wrong")).status == 401
    # Even the right password is refused now, with a clear message.
    throttled = await login(portal.client, "alice", "alice-pw-1")
    assert throttled.status == 429
    assert "Too many failed sign-in attempts" in await throttled.text()
    assert int(throttled.headers["Retry-After"]) == 15 * 60
    assert "linkwatch_session" not in throttled.cookies
    # Other accounts are not affected, and unknown names are throttled alike.
    assert (await login(portal.client, "olga", "olga-pw-1")).status == 303
    for _ in range(5):
        await login(portal.client, "nobody", "guess")
    assert (await login(portal.client, "nobody", "guess")).status == 429
    # The window passes.
    portal.clock.advance(timedelta(minutes=15))
    assert (await login(portal.client, "alice", "alice-pw-1")).status == 303


# --- hardening ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/login", "/healthz", "/static/portal.css", "/no-such-page", "/api/v1/nothing"]
)
async def test_security_headers_on_every_response(portal: Portal, path: str) -> None:
    response = await portal.client.get(path)
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert "aiohttp" not in headers.get("Server", "")


async def test_signed_in_pages_are_not_cached(portal: Portal) -> None:
    await signed_in(portal, "olga", "olga-pw-1")
    response = await portal.client.get("/")
    assert response.headers["Cache-Control"] == "no-store"


async def test_malformed_requests_get_4xx_not_500(portal: Portal) -> None:
    client = portal.client
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
    for response in (bad_utf8, bad_charset, multipart, huge, wrong_method):
        body = await response.text()
        assert "Traceback" not in body
        assert "<h1>" in body


async def test_api_errors_are_json(portal: Portal) -> None:
    response = await portal.client.get("/api/v1/nothing")
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert (await response.json())["error"]["status"] == 404


async def test_failures_never_leak_internals() -> None:
    async def broken(links: list[Link], now: datetime) -> list[LinkState]:
        raise RuntimeError('relation "samples" does not exist: SELECT * FROM samples')

    async def database_away(links: list[Link], now: datetime) -> list[LinkState]:
        raise DatabaseError("connection refused: postgresql://linkwatch:secret@db/linkwatch")

    for source, status in ((broken, 500), (database_away, 503)):
        async for portal in make_portal(source):
            await login(portal.client, "olga", "olga-pw-1")
            response = await portal.client.get("/")
            assert response.status == status
            body = await response.text()
            for leak in ("SELECT", "Traceback", "secret", "postgresql", "RuntimeError"):
                assert leak not in body
            assert "Content-Security-Policy" in response.headers


async def test_customer_with_no_links_sees_an_empty_page() -> None:
    async for portal in make_portal(links=[link for link in LINKS if link.customer != "globex"]):
        await signed_in(portal, "gus", "gus-pw-1")
        html = await _page(portal)
        assert "No links to show." in html
        assert "0 links" in html
        assert portal.asked_for == []


async def test_operational_notices_reach_staff_but_never_customers() -> None:
    app = create_app(
        PortalSettings(session_ttl=TTL),
        users=USERS,
        customers=CUSTOMERS,
        links=LINKS,
        states=lambda links, now: _no_states(),
        clock=FakeClock(NOW),
        notices=lambda: ["1,200 samples are waiting in the disk spool"],
    )
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        portal = Portal(client, FakeClock(NOW), [])
        await signed_in(portal, "olga", "olga-pw-1")
        assert "1,200 samples are waiting in the disk spool" in await _page(portal)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        portal = Portal(client, FakeClock(NOW), [])
        await signed_in(portal, "alice", "alice-pw-1")
        assert "disk spool" not in await _page(portal)


async def _no_states() -> list[LinkState]:
    return []
