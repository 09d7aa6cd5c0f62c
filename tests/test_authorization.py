"""The authorisation matrix: every route of the portal, pages and API, asked by every role
about its own customer's objects and another customer's, against what that role may do.

Every route the app registers must have a row here (a new route without one fails the
suite), and for a customer every refusal must look exactly like a missing object and
never name the other customer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from psycopg import sql
from psycopg.rows import tuple_row

from collector import Database
from collector.acknowledgements import outage_key
from collector.attributions import attribute
from collector.incident_reports import OutageRef, open_incident
from collector.maintenance_work import create_window, resolve_scope
from collector.recurring import create_series
from kernel.recurrence import MaintenanceSeries
from portal.keys import ACCOUNTS
from sla.ledger import TimeRange, list_rows, refresh_ledger
from tests.portal_kit import PortalKit, form_token, running_portal

ROLES = ("anonymous", "alice", "olga", "bill", "ada")  # none, customer acme, ops, billing, admin
NOT_404 = "not 404"  # allowed through authorisation; the answer is the action's own


def each(status: int | str) -> dict[str, int | str]:
    """The same answer for every signed-in role, and sign-in for anonymous visitors."""
    return {"anonymous": 303, **dict.fromkeys(ROLES[1:], status)}


def staff(status: int | str, customer: int | str) -> dict[str, int | str]:
    return {"anonymous": 303, "alice": customer, "olga": status, "bill": status, "ada": status}


def capability(allowed: tuple[str, ...], ok: int | str = 200) -> dict[str, int | str]:
    return {"anonymous": 303, **{role: ok if role in allowed else 404 for role in ROLES[1:]}}


NOC = ("olga", "ada")
LEDGER = ("bill", "ada")
COMPLIANCE = ("olga", "bill", "ada")  # operations and billing read the compliance rate
MONTH = "2026-11"  # the month and week running at tests.portal_kit.NOW
WEEK = "2026-W47"


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # with {own_link}, {other_link}, {own_row}, {other_row}, {other_token}
    expected: Mapping[str, int | str]
    data: Mapping[str, Any] | None = None  # form fields, or the JSON body for the API


PAGES = [
    Case("GET", "/healthz", dict.fromkeys(ROLES, 200)),
    Case("GET", "/readyz", dict.fromkeys(ROLES, 200)),
    Case("GET", "/favicon.ico", dict.fromkeys(ROLES, 200)),
    Case("GET", "/login", {"anonymous": 200, **dict.fromkeys(ROLES[1:], 303)}),
    Case("GET", "/", each(303)),
    Case("GET", "/links", each(200)),
    Case("GET", "/links?customer=acme", each(200)),
    Case("GET", "/links?customer=globex", staff(200, 404)),
    Case("GET", "/partial/links", {**each(200), "anonymous": 401}),
    Case("GET", "/links/{own_link}", each(200)),
    Case("GET", "/links/{other_link}", staff(200, 404)),
    Case("GET", "/links/{other_link}?range=90d", staff(200, 404)),
    Case("GET", "/partial/links/{own_link}", {**each(200), "anonymous": 401}),
    Case("GET", "/partial/links/{other_link}", {**staff(200, 404), "anonymous": 401}),
    Case("GET", "/noc", capability(NOC)),
    Case("GET", "/partial/noc", {**capability(NOC), "anonymous": 401}),
    Case("GET", "/noc/compliance", capability(COMPLIANCE)),
    Case("GET", "/noc/notifications", capability(NOC)),
    Case("GET", "/noc/sites", capability(NOC)),
    Case("GET", "/billing", capability(LEDGER)),
    Case("GET", "/billing/export.csv", capability(LEDGER)),
    Case("GET", "/billing/confirm?action=approve&id={own_row}", capability(LEDGER, NOT_404)),
    Case("GET", "/billing/ledger/{own_row}", capability(LEDGER)),
    Case("GET", "/billing/ledger/{other_row}", capability(LEDGER)),
    Case("GET", "/billing/audit", capability(LEDGER)),
    Case("GET", "/reports", each(200)),
    Case("GET", f"/reports/monthly?customer=acme&month={MONTH}", each(200)),
    Case("GET", f"/reports/monthly?customer=globex&month={MONTH}", staff(200, 404)),
    Case("GET", f"/reports/monthly.pdf?customer=acme&month={MONTH}", each(200)),
    Case("GET", f"/reports/monthly.pdf?customer=globex&month={MONTH}", staff(200, 404)),
    Case("GET", "/credits", {**each(200), "bill": 303, "ada": 303}),
    Case("GET", "/credits?customer=globex", {**staff(200, 404), "bill": 303, "ada": 303}),
    Case("GET", "/maintenance", each(200)),
    Case("GET", "/account", each(200)),
    Case("GET", "/static/portal.css", dict.fromkeys(ROLES, 200)),
    # Unsafe requests carry the viewer's CSRF token (anonymous visitors have none: 403).
    Case("POST", "/logout", {**each(303), "anonymous": 403}),
    Case(
        "POST",
        "/billing/approve",
        {**capability(LEDGER, NOT_404), "anonymous": 403},
        {"id": "{own_row}"},
    ),
    Case(
        "POST",
        "/billing/apply",
        {**capability(LEDGER, NOT_404), "anonymous": 403},
        {"id": "{own_row}", "invoice_ref": "INV-1"},
    ),
    Case(
        "POST",
        "/billing/ledger/{own_row}/adjust",
        {**capability(LEDGER, NOT_404), "anonymous": 403},
        {"amount": "1.00", "reason": "goodwill"},
    ),
    Case(
        "POST",
        "/noc/notifications/retry",
        {**capability(NOC, 303), "anonymous": 403},
        {"event_id": "link-down:x", "route_id": "ops"},
    ),
    Case(
        "POST",
        "/account/tokens",
        {**each(200), "anonymous": 403},
        {"label": "matrix", "expires_days": "30"},
    ),
    # Another user's token is nobody else's to revoke, whatever their role.
    Case("POST", "/account/tokens/{other_token}/revoke", {**each(404), "anonymous": 403}),
    # Outage attributions: ops and admin attribute and withdraw (the second one to try
    # finds the time attributed, or withdrawn, already: refused on its own terms).
    Case(
        "POST",
        "/links/{down_link}/attributions",
        {**capability(NOC, NOT_404), "anonymous": 403},
        {
            "outage_start": "{outage_start}",
            "starts_at": "{later_start}",
            "ends_at": "{later_end}",
            "reason": "CPE powered off",
        },
    ),
    Case(
        "POST",
        "/links/{down_link}/attributions/{own_attribution}/withdraw",
        {**capability(NOC, NOT_404), "anonymous": 403},
        {"reason": "the customer disputes it"},
    ),
    # Recurring maintenance: ops and admin create, skip one occurrence, cancel a series
    # (the second one to try finds it done already: refused on its own terms).
    Case("GET", "/noc/maintenance/series", capability(NOC)),
    Case(
        "POST",
        "/noc/maintenance/series",
        {**capability(NOC, NOT_404), "anonymous": 403},
        {
            "id": "matrix",
            "links": "acme-fra-1",
            "start": "2027-01-05T02:00",
            "timezone": "Europe/Berlin",
            "duration": "2h",
            "rrule": "FREQ=MONTHLY;BYDAY=1TU",
        },
    ),
    Case(
        "POST",
        "/noc/maintenance/series/{own_series}/skip",
        {**capability(NOC, NOT_404), "anonymous": 403},
        {"starts_at": "{occurrence}", "reason": "change freeze"},
    ),
    Case(
        "POST",
        "/noc/maintenance/series/{own_series}/cancel",
        {**capability(NOC, NOT_404), "anonymous": 403},
        {"reason": "no longer needed"},
    ),
    # Acknowledging an outage: ops and admin (the second to try finds it acknowledged).
    Case("GET", "/links/{down_link}/outages/{outage_key}/ack", capability(NOC)),
    Case(
        "POST",
        "/links/{down_link}/outages/{outage_key}/ack",
        {**capability(NOC, NOT_404), "anonymous": 403},
        {"note": "crew dispatched", "next": "/noc"},
    ),
    Case("GET", "/noc/operations", capability(NOC)),
    Case("GET", "/noc/operations?month=2026-10", capability(NOC)),
    # Incidents: ops and admin group outages and post updates (the outage is the
    # incident's already, so grouping it again is refused on its own terms).
    Case("GET", "/noc/incidents", capability(NOC)),
    Case(
        "POST",
        "/noc/incidents",
        {**capability(NOC, NOT_404), "anonymous": 403},
        {"outage": "{down_link}|{outage_start}", "title": "Fibre cut"},
    ),
    Case(
        "POST",
        "/noc/incidents/{own_incident}/outages",
        {**capability(NOC, NOT_404), "anonymous": 403},
        {"outage": "{down_link}|{outage_start}"},
    ),
    Case(
        "POST",
        "/noc/incidents/{own_incident}/updates",
        {**capability(NOC, 303), "anonymous": 403},
        {"body": "Crew on site, ETA 14:00"},
    ),
    # Maintenance: the NOC's desk and its forms (the second role to try finds the window
    # moved or cancelled already: refused on its own terms); every viewer's own feed.
    Case("GET", "/noc/maintenance", capability(NOC)),
    Case("GET", "/noc/maintenance/{own_maintenance}", capability(NOC)),
    Case("GET", "/noc/maintenance/{other_maintenance}", capability(NOC)),
    Case("GET", "/maintenance.ics", each(200)),
    Case(
        "POST",
        "/noc/maintenance",
        {**capability(NOC, 303), "anonymous": 403},
        {
            "scope": "links",
            "link_ids": "{own_link}",
            "starts_at": "{mw_start}",
            "ends_at": "{mw_end}",
            "description": "Line card swap",
        },
    ),
    Case(
        "POST",
        "/noc/maintenance/{own_maintenance}/reschedule",
        {**capability(NOC, NOT_404), "anonymous": 403},
        {"starts_at": "{mw_start}", "ends_at": "{mw_end}"},
    ),
    Case(
        "POST",
        "/noc/maintenance/{own_maintenance}/cancel",
        {**capability(NOC, NOT_404), "anonymous": 403},
        {"note": "postponed by the vendor"},
    ),
    # Config-file users change their password in the file: refused, but reached.
    Case(
        "POST",
        "/account/password",
        {**each(400), "anonymous": 403},
        {"current": "x", "new": "long-enough-1", "again": "long-enough-1"},
    ),
]


def api(allowed: tuple[str, ...] | None = None, ok: int | str = 200) -> dict[str, int | str]:
    """API answers: 401 without a token; `allowed` roles (default: everyone) get `ok`."""
    who = ROLES[1:] if allowed is None else allowed
    return {"anonymous": 401, **{role: ok if role in who else 404 for role in ROLES[1:]}}


STAFF = ("olga", "bill", "ada")
API = [
    Case("GET", "/api/v1/openapi.json", dict.fromkeys(ROLES, 200)),
    Case("GET", "/api/v1/me", api()),
    Case("GET", "/api/v1/links", api()),
    Case("GET", "/api/v1/links?customer=globex", api(STAFF)),
    Case("GET", "/api/v1/links/{own_link}", api()),
    Case("GET", "/api/v1/links/{other_link}", api(STAFF)),
    Case("GET", "/api/v1/links/{own_link}/incidents", api()),
    Case("GET", "/api/v1/links/{other_link}/incidents", api(STAFF)),
    Case("GET", "/api/v1/links/{own_link}/availability", api()),
    Case("GET", "/api/v1/links/{other_link}/availability", api(STAFF)),
    Case("GET", "/api/v1/links/{own_link}/series", api()),
    Case("GET", "/api/v1/links/{other_link}/series", api(STAFF)),
    Case("GET", "/api/v1/contracts", api()),
    Case("GET", f"/api/v1/reports/sla?window={WEEK}", api()),
    Case("GET", f"/api/v1/reports/sla?window={WEEK}&customer=globex", api(STAFF)),
    Case("GET", "/api/v1/credits", api(("alice", *LEDGER))),
    Case("GET", "/api/v1/credits?customer=globex", api(LEDGER)),
    Case("GET", "/api/v1/credits/{own_row}", api(("alice", *LEDGER))),
    Case("GET", "/api/v1/credits/{other_row}", api(LEDGER)),
    Case("POST", "/api/v1/credits/{own_row}/approve", api(LEDGER, NOT_404), {}),
    Case("POST", "/api/v1/credits/{own_row}/apply", api(LEDGER, NOT_404), {"invoice_ref": "INV-1"}),
    Case("GET", "/api/v1/links/{down_link}/attributions", api()),
    Case("GET", "/api/v1/links/{other_link}/attributions", api(STAFF)),
    Case(
        "POST",
        "/api/v1/links/{down_link}/attributions",
        api(NOC, NOT_404),
        {
            "outage_start": "{outage_start}",
            "starts_at": "{later_start}",
            "ends_at": "{later_end}",
            "reason": "CPE powered off",
        },
    ),
    Case(
        "POST",
        "/api/v1/links/{down_link}/attributions/{own_attribution}/withdraw",
        api(NOC, NOT_404),
        {"reason": "the customer disputes it"},
    ),
    Case("POST", "/api/v1/links/{down_link}/outages/{outage_key}/ack", api(NOC, NOT_404), {}),
    Case("GET", "/api/v1/links/{down_link}/acknowledgements", api(STAFF)),
    Case("GET", "/api/v1/links/{other_link}/acknowledgements", api(STAFF)),
    Case("GET", "/api/v1/reports/operations", api(NOC)),
    Case("GET", "/api/v1/maintenance", api()),
    Case("GET", "/api/v1/maintenance.ics", api()),
    Case("GET", "/api/v1/maintenance/{own_maintenance}", api()),
    Case("GET", "/api/v1/maintenance/{other_maintenance}", api(STAFF)),
    # The matrix sends string fields only: the announcement is refused on its own terms
    # (tests/test_work_maintenance.py announces through the API for real).
    Case(
        "POST",
        "/api/v1/maintenance",
        api(NOC, NOT_404),
        {"starts_at": "{mw_start}", "ends_at": "{mw_end}", "description": "Line card swap"},
    ),
    Case(
        "POST",
        "/api/v1/maintenance/{own_maintenance}/reschedule",
        api(NOC, NOT_404),
        {"starts_at": "{mw_start}", "ends_at": "{mw_end}"},
    ),
    Case("POST", "/api/v1/maintenance/{own_maintenance}/cancel", api(NOC, NOT_404), {}),
    Case("GET", "/api/v1/maintenance/series", api(NOC)),
    Case(
        "POST",
        "/api/v1/maintenance/series",
        api(NOC, NOT_404),
        {
            "id": "matrix",
            "links": ["acme-fra-1"],
            "start": "2027-01-05T02:00",
            "timezone": "Europe/Berlin",
            "duration": "2h",
            "rrule": "FREQ=MONTHLY;BYDAY=1TU",
        },
    ),
    Case(
        "POST",
        "/api/v1/maintenance/series/{own_series}/skip",
        api(NOC, NOT_404),
        {"starts_at": "{occurrence}"},
    ),
    Case("POST", "/api/v1/maintenance/series/{own_series}/cancel", api(NOC, NOT_404), {}),
    Case("GET", "/api/v1/sites", api(NOC)),
    Case("GET", "/api/v1/compliance", api()),
    Case("GET", "/api/v1/compliance?customer=acme", api()),
    Case("GET", "/api/v1/compliance?customer=globex", api(STAFF)),
    Case("GET", "/api/v1/compliance?plan=none", api(STAFF)),
    Case("GET", "/api/v1/incidents", api()),
    Case("GET", "/api/v1/incidents/{own_incident}", api()),
    Case("GET", "/api/v1/incidents/{other_incident}", api(STAFF)),
    Case(
        "POST",
        "/api/v1/incidents",
        api(NOC, NOT_404),  # reached: the body, without its outages, is refused
        {"title": "Fibre cut"},
    ),
    Case(
        "POST",
        "/api/v1/incidents/{own_incident}/outages",
        api(NOC, NOT_404),
        {},
    ),
    Case(
        "POST",
        "/api/v1/incidents/{own_incident}/updates",
        api(NOC),
        {"body": "Crew on site, ETA 14:00"},
    ),
]
CASES = PAGES + API
MATRIX_SERIES = MaintenanceSeries(
    id="fra-patching",
    description="Frankfurt PoP software update",
    reference="CHG-77",
    link_ids=("acme-fra-1",),
    customer_ids=(),
    start=datetime(2026, 12, 1, 2, 0),
    zone="Europe/Berlin",
    duration=timedelta(hours=2),
    rule="FREQ=MONTHLY;BYDAY=1TU",
    lead=timedelta(days=14),
    source="portal",
    created_by="olga",
)


@dataclass
class World:
    kit: PortalKit
    ids: dict[str, str]
    tokens: dict[str, str]  # role -> API token


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with running_portal(database) as kit:
        now = kit.clock()
        await refresh_ledger(database, kit.config, TimeRange(now - timedelta(days=40), now), now)
        rows = await list_rows(database)
        own = next(r for r in rows if r.customer_id == "acme" and r.kind == "window")
        other = next(r for r in rows if r.customer_id == "globex" and r.kind == "window")
        accounts = kit.client.app[ACCOUNTS]
        tokens = {}
        for name in ROLES[1:]:
            user = await accounts.user(name)
            assert user is not None
            tokens[name] = (await accounts.create_token(user, "matrix", now))[1]
        gus = await accounts.user("gus")
        assert gus is not None
        gus_token, _ = await accounts.create_token(gus, "not yours", now)
        # acme-ber-2 is down for the last 25 minutes (tests.portal_kit.standard_history).
        outage = now - timedelta(minutes=25)
        made = await attribute(
            database, "acme-ber-2", outage, reason="CPE off", by="olga", at=now,
            ends_at=outage + timedelta(minutes=5),
        )  # fmt: skip
        told = await open_incident(
            database, [OutageRef("acme-ber-2", outage)], title="Fibre cut", by="olga", at=now,
            customers={"acme-ber-2": "acme"},
        )  # fmt: skip
        # Another customer's incident, stored as it would be (their link has no outage).
        async with database.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO incident_reports (title, opened_by, opened_at)"
                " VALUES ('Power', 'olga', %s) RETURNING id",
                (now,),
            )
            row = await cur.fetchone()
            assert row is not None
            await conn.execute(
                "INSERT INTO incident_report_outages VALUES (%s, 'globex-bos-2', %s, 'olga', %s)",
                (row[0], now - timedelta(minutes=5), now),
            )
        own_window, other_window = [
            await create_window(
                database,
                resolve_scope(kit.config, link_ids=[link]),
                starts_at=now + timedelta(days=3),
                ends_at=now + timedelta(days=3, hours=2),
                description=f"Planned work on {link}",
                by="olga",
                now=now,
            )
            for link in ("acme-fra-1", "globex-nyc-1")
        ]
        ids = {
            "own_maintenance": own_window.id,
            "other_maintenance": other_window.id,
            "mw_start": (now + timedelta(days=5)).isoformat(),
            "mw_end": (now + timedelta(days=5, hours=1)).isoformat(),
            "own_incident": str(told.id),
            "other_incident": str(row[0]),
            "down_link": "acme-ber-2",
            "outage_start": outage.isoformat(),
            "outage_key": outage_key(outage),
            "later_start": (now - timedelta(minutes=15)).isoformat(),
            "later_end": (now - timedelta(minutes=10)).isoformat(),
            "own_attribution": str(made.id),
            "own_link": "acme-fra-1",
            "other_link": "globex-nyc-1",
            "own_row": str(own.id),
            "other_row": str(other.id),
            "other_token": str(gus_token.id),
            "own_series": "fra-patching",
            "occurrence": "2026-12-01T01:00:00Z",  # 02:00 in Berlin, 13 days ahead
        }
        await create_series(database, MATRIX_SERIES, now=now)
        yield World(kit, ids, tokens)


def _fill(text: str, ids: Mapping[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), m.group(0)), text)


async def _ask(world: World, role: str, case: Case) -> tuple[int, str]:
    client = world.kit.client
    path = _fill(case.path, world.ids)
    if path.startswith("/api/"):
        headers = {} if role == "anonymous" else {"Authorization": f"Bearer {world.tokens[role]}"}
        if case.method == "GET":
            response = await client.get(path, headers=headers, allow_redirects=False)
        else:
            body = {k: _fill(str(v), world.ids) for k, v in (case.data or {}).items()}
            response = await client.post(path, json=body, headers=headers, allow_redirects=False)
        return response.status, await response.text()
    if case.method == "GET":
        response = await client.get(path, allow_redirects=False)
        return response.status, await response.text(errors="replace")  # a PDF is not text
    data = {k: _fill(str(v), world.ids) for k, v in (case.data or {}).items()}
    if role != "anonymous":
        data["csrf_token"] = form_token(await (await client.get("/account")).text())
    response = await client.post(path, data=data, allow_redirects=False)
    return response.status, await response.text()


def _case_id(case: Case) -> str:
    return f"{case.method} {case.path}"


MISSING = {
    "own_maintenance": "mw-999999999",
    "other_maintenance": "mw-999999999",
    "own_incident": "999999999",
    "other_incident": "999999999",
    "down_link": "no-such-link",
    "own_attribution": "999999999",
    "outage_key": "2026-11-18T11:35:00Z",
    "own_link": "no-such-link",
    "other_link": "no-such-link",
    "own_row": "999999999",
    "other_row": "999999999",
    "other_token": "999999999",
    "own_series": "no-such-series",
}


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
async def test_each_role_gets_what_it_may_and_nothing_else(world: World, case: Case) -> None:
    kit = world.kit
    # The same request about something that does not exist: what a refusal must equal.
    absent = Case(case.method, case.path.replace("customer=globex", "customer=nobody"),
                  case.expected, case.data)  # fmt: skip
    for role in ROLES:
        await kit.sign_out()
        if role != "anonymous":
            await kit.sign_in(role)
        status, body = await _ask(world, role, case)
        expected = case.expected[role]
        where = f"{case.method} {case.path} as {role}: {status}\n{body[:500]}"
        if expected == NOT_404:
            assert status not in (401, 403, 404), where
            assert status < 500, where
        else:
            assert status == expected, where
        assert "Traceback" not in body
        if status == 404:
            missing_status, missing_body = await _ask(
                World(kit, MISSING, world.tokens), role, absent
            )
            # Refused exactly like something that does not exist.
            assert (status, body) == (missing_status, missing_body), where
        if role == "alice":
            assert "globex" not in body.lower(), where  # never the other customer's name or id


def test_every_route_is_in_the_matrix(database: Database) -> None:
    from portal import PortalSettings, create_app
    from tests.portal_kit import portal_config

    app = create_app(PortalSettings(), db=database, config=portal_config())
    routes = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.method == "HEAD" or path is None:  # HEAD mirrors GET; /static is a prefix
            continue
        routes.add((route.method, path))
    placeholder = {
        "own_maintenance": "{maintenance_id}",
        "other_maintenance": "{maintenance_id}",
        "own_incident": "{incident_id}",
        "other_incident": "{incident_id}",
        "down_link": "{link_id}",
        "own_attribution": "{attribution_id}",
        "outage_key": "{start}",
        "own_link": "{link_id}",
        "other_link": "{link_id}",
        "own_row": "{row_id}",
        "other_row": "{row_id}",
        "other_token": "{token_id}",
        "own_series": "{series_id}",
    }
    covered = set()
    for case in CASES:
        path = case.path.split("?")[0]
        if path.startswith("/api/"):
            path = path.replace("{own_row}", "{credit_id}").replace("{other_row}", "{credit_id}")
        covered.add((case.method, _fill(path, placeholder)))
    # POST /login is the sign-in itself, exercised throughout tests/test_portal.py.
    missing = routes - covered - {("POST", "/login")}
    assert not missing, f"routes without a row in the matrix: {sorted(missing)}"


async def _tables(db: Database) -> dict[str, str]:
    """Every table's rows, as a digest: what a refused request must leave as it was."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        names = [name for (name,) in await cur.fetchall()]
        digests = {}
        for name in names:
            await cur.execute(
                sql.SQL(
                    "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {} t"
                ).format(sql.Identifier(name))
            )
            row = await cur.fetchone()
            assert row is not None
            digests[name] = row[0]
    return digests


FORMS = [c for c in PAGES if c.method == "POST"]


@pytest.mark.parametrize("case", FORMS, ids=[_case_id(c) for c in FORMS])
async def test_the_sign_in_forms_token_opens_no_other_form(world: World, case: Case) -> None:
    """Anyone can fetch a sign-in form: its token, sent with its cookie, must not stand
    in for the session's own token on any form of a signed-in user."""
    kit = world.kit
    async with aiohttp.ClientSession() as stranger:
        page = await stranger.get(kit.client.make_url("/login"))
        login_token = form_token(await page.text())
        assert page.cookies["linkwatch_login_csrf"].value == login_token
    await kit.sign_in("ada")
    path = _fill(case.path, world.ids)
    data = {k: _fill(str(v), world.ids) for k, v in (case.data or {}).items()}
    before = await _tables(kit.db)
    forged = await kit.client.post(
        path,
        data={**data, "csrf_token": login_token},
        cookies={"linkwatch_login_csrf": login_token},
        allow_redirects=False,
    )
    assert forged.status == 403, f"{path}: {forged.status}\n{(await forged.text())[:500]}"
    assert await _tables(kit.db) == before
    # The same request with the session's own token is taken.
    own = form_token(await (await kit.client.get("/account")).text())
    taken = await kit.client.post(path, data={**data, "csrf_token": own}, allow_redirects=False)
    expected = case.expected["ada"]
    if expected == NOT_404:
        assert taken.status not in (401, 403, 404), path
        assert taken.status < 500, path
    else:
        assert taken.status == expected, path
