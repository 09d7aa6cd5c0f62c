"""The JSON API under /api/v1, over real HTTP on loopback, on the embedded PostgreSQL with
samples stored through the collector and a ledger computed by `sla.ledger`.

Every response the tests receive is checked against the API's own OpenAPI document (the
schema documented for its operation and status, or the error schema). Property-based
tests hold each parameter's parser to the schema the document states for it, and
`schemathesis run --checks all` sends generated requests, ones the document allows and
ones it forbids, to the live app as a customer and as billing, with another customer's
token to try on what each gets.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema_rs
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import Database, upsert_maintenance
from kernel.domain import MaintenanceWindow, Outcome, Sample
from kernel.errors import DatabaseError
from portal import reads
from portal.api import params as api_params
from portal.api.params import Cursors
from portal.api.patterns import (
    CURSOR_PATTERN,
    DATE_PATTERN,
    DATE_TIME_PATTERN,
    DURATION_PATTERN,
    ID_PATTERN,
    PERSON_TEXT_PATTERN,
    WINDOW_PATTERN,
)
from portal.api.routes import api_document
from portal.api.schemas import LEDGER_OWN_FIELDS, SLA_FIELDS
from portal.keys import ACCOUNTS
from portal.middleware import PortalError
from sla.ledger import MAX_NOTE_CHARS, audit_log, export_fields, list_rows, refresh_ledger
from sla.records import FIELDS, record, to_json
from sla.report import contract_windows
from tests.portal_kit import NOW, PortalKit, minutes, running_portal, samples, standard_history

ACME_LINKS = ["acme-ber-2", "acme-fra-1"]
GLOBEX_LINKS = ["globex-bos-2", "globex-nyc-1"]
# What nothing shown to Acme's people may contain.
GLOBEX_MARKS = ("globex", "Globex", "New York", "Boston", "USD")
ACME_MARKS = ("acme", "Acme", "Frankfurt", "Berlin", "EUR")
LEDGER_WINDOWS = ["2026-W46", "2026-W47", "2026-10", "2026-11"]
MISSING_CREDIT = 987654321


def history(now: datetime) -> list[Sample]:
    """The portal kit's standard history, plus two ten-minute outages of acme-fra-1
    (six and five hours ago) in the hours before it, acme-fra-1 up all of last week, and
    a first sample of the links it measures on 1 October, when their monitoring began
    (globex-bos-2 is never measured: only its running window has a ledger row). So
    acme-fra-gold's 2026-W46 is fully measured and acme-ber-silver's October is flagged
    for review (a single sample)."""
    out = standard_history(now)
    began = datetime(2026, 10, 1, tzinfo=UTC)
    for link_id in ("acme-fra-1", "acme-ber-2", "globex-nyc-1"):
        out += samples(link_id, [began], rtt_ms=12.34, loss_pct=0.0)
    last_week = datetime(2026, 11, 8, 23, 0, tzinfo=UTC)  # 2026-W46 in Berlin
    out += samples(
        "acme-fra-1",
        minutes(last_week, last_week + timedelta(days=7), timedelta(minutes=2)),
        rtt_ms=12.34,
        loss_pct=0.0,
    )
    up = {"rtt_ms": 12.34, "loss_pct": 0.0}
    down = {"loss_pct": 100.0, "error": "no reply (5/5 lost)"}
    h = timedelta(hours=1)
    ten = timedelta(minutes=10)
    for start, end, outcome, fields in (
        (now - 8 * h, now - 6 * h, Outcome.UP, up),
        (now - 6 * h, now - 6 * h + ten, Outcome.DOWN, down),
        (now - 6 * h + ten, now - 5 * h, Outcome.UP, up),
        (now - 5 * h, now - 5 * h + ten, Outcome.DOWN, down),
        (now - 5 * h + ten, now - 3 * h, Outcome.UP, up),
    ):
        out += samples("acme-fra-1", minutes(start, end), outcome, **fields)
    return out


def planned(
    window_id: str, starts_in: timedelta, hours: int, description: str, **targets: tuple[str, ...]
) -> MaintenanceWindow:
    """A window starting `starts_in` from NOW, announced well ahead (20 days before it)."""
    start = NOW + starts_in
    return MaintenanceWindow(
        window_id,
        start,
        start + timedelta(hours=hours),
        start - timedelta(days=20),
        description,
        **targets,
    )


DAY = timedelta(days=1)
MAINTENANCE = [
    planned("mw-berlin", DAY, 2, "Router swap in Berlin", link_ids=("acme-ber-2",)),
    planned("mw-gx-core", 2 * DAY, 1, "Globex core upgrade", customer_ids=("globex",)),
    planned("mw-everything", -10 * DAY, 1, "Monitoring upgrade"),
    planned("mw-duct", 3 * DAY, 4, "Fibre duct works", link_ids=("acme-fra-1", "globex-nyc-1")),
]


# --- calling the API, and holding every answer to the document ----------------------------


@dataclass
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]


class Api:
    """The portal's API as a client with one token sees it."""

    def __init__(self, kit: PortalKit, document: dict[str, Any], token: str | None) -> None:
        self.kit = kit
        self.document = document
        self.token = token

    async def call(
        self,
        method: str,
        path: str,
        expect: int | None = 200,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Answer:
        sent = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = await self.kit.client.request(
            method, path, params=params, headers={**sent, **(headers or {})}, **kwargs
        )
        assert response.headers["Content-Type"].startswith("application/json")
        body = await response.json()
        if expect is not None:
            assert response.status == expect, f"{method} {path} {params}: {body}"
        conforms(self.document, method, path, response.status, body)
        return Answer(response.status, body, response.headers)

    async def get(self, path: str, expect: int | None = 200, **params: str) -> Any:
        return (await self.call("GET", path, expect, params=params)).body

    async def post(self, path: str, expect: int | None = 200, **kwargs: Any) -> Any:
        return (await self.call("POST", path, expect, **kwargs)).body

    async def walk(self, path: str, **params: str) -> list[Any]:
        """Every item of a paged list, page by page."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = await self.get(path, **params, **({"cursor": cursor} if cursor else {}))
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items


def operation_of(document: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    for template, methods in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in methods:
            operation: dict[str, Any] = methods[method.lower()]
            return operation
    return None


def conforms(document: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    """`body` is what the document says `status` answers for this operation; an
    undocumented route's answer is an error of the one documented shape."""
    operation = operation_of(document, method, path)
    # A 500 is a bug, so never documented; even then it has the one error shape.
    if operation is None or status == 500:
        assert status >= 400, f"{method} {path} answered {status} but is not documented"
        schema: dict[str, Any] = {"$ref": "#/components/schemas/Error"}
    else:
        assert str(status) in operation["responses"], f"{method} {path}: {status} undocumented"
        response = operation["responses"][str(status)]
        if "$ref" in response:
            response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = response["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator(
        {**schema, "components": document["components"]}, validate_formats=True
    )
    problems = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
    assert not problems, f"{method} {path} {status}: {problems[:5]}"


# --- fixtures ------------------------------------------------------------------------------


@dataclass
class World:
    kit: PortalKit
    document: dict[str, Any]
    tokens: dict[str, str]

    def api(self, user: str | None) -> Api:
        return Api(self.kit, self.document, None if user is None else self.tokens[user])


async def make_token(kit: PortalKit, name: str, **kwargs: Any) -> str:
    accounts = kit.client.server.app[ACCOUNTS]
    user = await accounts.user(name)
    assert user is not None
    _token, secret = await accounts.create_token(user, f"{name} test", kit.clock(), **kwargs)
    return secret


@pytest.fixture
async def world(database: Database) -> AsyncIterator[World]:
    async with running_portal(database, history=history) as kit:
        await upsert_maintenance(database, MAINTENANCE, source="config")
        await refresh_ledger(database, kit.config, LEDGER_WINDOWS, NOW)
        document = await (await kit.client.get("/api/v1/openapi.json")).json()
        tokens = {
            name: await make_token(kit, name) for name in ("alice", "gus", "olga", "bill", "ada")
        }
        yield World(kit, document, tokens)


def ids(items: list[dict[str, Any]]) -> list[Any]:
    return [item["id"] for item in items]


# --- the document --------------------------------------------------------------------------


async def test_the_document_needs_no_token_and_describes_exactly_the_routes(
    world: World,
) -> None:
    document = world.document
    assert document["openapi"].startswith("3.1")
    app = world.kit.client.server.app
    registered = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and route.method != "HEAD"
    }
    documented = {
        (method.upper(), path) for path, methods in document["paths"].items() for method in methods
    }
    assert registered == documented
    operation_ids = [op["operationId"] for m in document["paths"].values() for op in m.values()]
    assert len(operation_ids) == len(set(operation_ids))
    for path, methods in document["paths"].items():
        for operation in methods.values():
            if path == "/api/v1/openapi.json":
                assert operation["security"] == []
            else:
                assert operation["security"] == [{"token": []}]
                assert "401" in operation["responses"]
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"


def test_every_record_field_has_its_type_documented() -> None:
    assert set(SLA_FIELDS) == set(FIELDS)
    assert set(export_fields()) <= {*SLA_FIELDS, *LEDGER_OWN_FIELDS}
    schemas = api_document()["components"]["schemas"]
    assert list(schemas["SlaRecord"]["properties"]) == list(FIELDS)
    assert list(schemas["Credit"]["properties"]) == list(export_fields())


# --- the document promises what the API accepts ------------------------------------------

DOCUMENT = api_document()


def parameter_schema(operation_id: str, name: str) -> dict[str, Any]:
    for methods in DOCUMENT["paths"].values():
        for operation in methods.values():
            if operation["operationId"] == operation_id:
                [parameter] = [p for p in operation["parameters"] if p["name"] == name]
                schema: dict[str, Any] = parameter["schema"]
                return schema
    raise KeyError(operation_id)


def allows(schema: dict[str, Any], value: object) -> bool:
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True).is_valid(value)


def status_of(read: Callable[[], object]) -> int:
    """What the API answers when `read` takes a parameter: 200 if it is read."""
    try:
        read()
    except PortalError as exc:
        return exc.status_code
    return 200


def query(**params: str) -> web.Request:
    return make_mocked_request("GET", "/?" + urlencode(params))


# Any character a URL can carry: it is sent as UTF-8, which has no lone surrogates.
SENDABLE = st.characters(exclude_categories=("Cs",))


def around(pattern: str) -> st.SearchStrategy[str]:
    """Values a pattern allows, the same with one character changed, dropped or added,
    and any text: most of what a client could send, on both sides of the line."""
    valid = st.from_regex(pattern, fullmatch=True)

    def mutated(text: str) -> st.SearchStrategy[str]:
        at = st.integers(0, len(text))
        return st.one_of(
            st.builds(lambda i, c: text[:i] + c + text[i + 1 :], at, SENDABLE),
            st.builds(lambda i: text[:i] + text[i + 1 :], at),
            st.builds(lambda i, c: text[:i] + c + text[i:], at, SENDABLE),
        )

    return st.one_of(valid, valid.flatmap(mutated), st.text(SENDABLE, max_size=30))


def test_every_parameter_states_what_it_takes() -> None:
    """No parameter is a bare string: each schema bounds what it takes, so a client (or a
    generator) that follows the document sends only what the API reads."""
    for path, methods in DOCUMENT["paths"].items():
        for operation in methods.values():
            for parameter in operation["parameters"]:
                schema = parameter["schema"]
                branches = schema.get("anyOf", [schema])
                for branch in branches:
                    bounded = (
                        "enum" in branch
                        or "pattern" in branch
                        or {"minimum", "maximum"} <= set(branch)
                        or (branch.get("type") == "integer" and "minimum" in branch)
                    )
                    assert bounded, f"{path} {parameter['name']}: {schema}"
    cursor = DOCUMENT["components"]["schemas"]["LinkPage"]["properties"]["next_cursor"]
    assert cursor["pattern"] == parameter_schema("listLinks", "cursor")["pattern"]


@settings(max_examples=400, deadline=None)
@given(st.one_of(around(WINDOW_PATTERN), st.integers(1960, 9999).map(lambda y: f"{y}-W53")))
def test_a_window_is_read_exactly_when_the_document_allows_it(text: str) -> None:
    schema = parameter_schema("listCredits", "window")
    status = status_of(lambda: api_params.window_label(query(window=text)))
    if not allows(schema, text):
        assert status == 400
    elif text.endswith("-W53") and date(int(text[:4]), 12, 28).isocalendar().week == 52:
        assert status == 404  # well formed, but that year has no week 53
    else:
        assert status == 200


@settings(max_examples=400, deadline=None)
@given(st.one_of(around(DATE_TIME_PATTERN), around(DATE_PATTERN)))
def test_a_time_is_read_exactly_when_the_document_allows_it(text: str) -> None:
    schema = parameter_schema("listLinkIncidents", "from")
    status = status_of(lambda: api_params.moment(text, "from"))
    assert status == (200 if allows(schema, text) else 400)


@settings(max_examples=400, deadline=None)
@given(around(DURATION_PATTERN))
def test_a_range_is_read_exactly_when_the_document_allows_it(text: str) -> None:
    schema = parameter_schema("getLinkSeries", "range")
    status = status_of(lambda: api_params.duration(text, "range", longest=None))
    assert status == (200 if allows(schema, text) else 400)
    if status == 200:
        assert api_params.duration(text, "range", longest=None) > timedelta(0)


@settings(max_examples=300, deadline=None)
@given(around(ID_PATTERN))
def test_an_id_filter_is_read_exactly_when_the_document_allows_it(text: str) -> None:
    schema = parameter_schema("listLinks", "customer")
    status = status_of(lambda: api_params.ident(query(customer=text), "customer"))
    assert status == (200 if allows(schema, text) else 400)


@settings(max_examples=300, deadline=None)
@given(st.one_of(around(PERSON_TEXT_PATTERN), st.text(st.sampled_from(" \t\n\x00\x1c\u00a0x"))))
def test_a_note_is_taken_exactly_when_the_document_allows_it(text: str) -> None:
    approve = next(
        op
        for m in DOCUMENT["paths"].values()
        for op in m.values()
        if op["operationId"] == "approveCredit"
    )
    schema = approve["requestBody"]["content"]["application/json"]["schema"]
    status = status_of(lambda: api_params.text_field({"note": text}, "note", most=MAX_NOTE_CHARS))
    assert status == (200 if allows(schema, {"note": text}) else 400)


# What the API pages by: ids (as the config allows them), positions and times.
KEY_PARTS = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9._-]{0,62}", fullmatch=True),
    st.integers(-(2**62), 2**62),
    st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat()),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(KEY_PARTS, min_size=1, max_size=4), around(CURSOR_PATTERN))
def test_a_cursor_is_in_the_documented_form_and_only_the_api_makes_one(
    key: list[str | int], made_up: str
) -> None:
    cursors = Cursors(b"k" * 32)
    cursor = cursors.make("q", tuple(key))
    assert allows(parameter_schema("listLinks", "cursor"), cursor)
    assert cursors.read("q", cursor) == key
    assert status_of(lambda: cursors.read("q", made_up)) == 400


# --- who sees what -------------------------------------------------------------------------


async def test_each_role_sees_exactly_its_links(world: World) -> None:
    alice, gus, olga = world.api("alice"), world.api("gus"), world.api("olga")
    assert ids((await alice.get("/api/v1/links"))["items"]) == ACME_LINKS
    assert ids((await gus.get("/api/v1/links"))["items"]) == GLOBEX_LINKS
    assert ids((await olga.get("/api/v1/links"))["items"]) == sorted(ACME_LINKS + GLOBEX_LINKS)
    down = await olga.get("/api/v1/links", status="down")
    assert ids(down["items"]) == ["acme-ber-2"]
    globex = await olga.get("/api/v1/links", customer="globex", status="degraded")
    assert ids(globex["items"]) == ["globex-nyc-1"]


async def test_a_link_shows_its_status_and_probes(world: World) -> None:
    link = await world.api("alice").get("/api/v1/links/acme-ber-2")
    assert link["status"] == "down"
    assert link["since"] == (NOW - timedelta(minutes=25)).isoformat()
    assert link["customer_name"] == "Acme Corp"
    assert link["contracts"] == ["acme-ber-silver"]
    [probe] = link["probes"]
    assert probe["id"] == "icmp"
    assert (probe["probe"], probe["site"]) == ("icmp", "local")  # the monitor's own site
    assert link["vantage"] is None
    assert probe["status"] == "down"
    assert probe["loss_pct"] == 100.0
    assert probe["error"] == "no reply (5/5 lost)"
    fra = await world.api("alice").get("/api/v1/links/acme-fra-1")
    assert (fra["status"], fra["probes"][0]["rtt_ms"]) == ("up", 12.34)


async def test_other_customers_objects_are_as_missing_as_nonexistent_ones(
    world: World,
) -> None:
    alice = world.api("alice")
    for tail in ("", "/incidents", "/availability", "/series"):
        other = await alice.call("GET", f"/api/v1/links/globex-nyc-1{tail}", 404)
        missing = await alice.call("GET", f"/api/v1/links/no-such-link{tail}", 404)
        assert other.body == missing.body
        assert "globex" not in json.dumps(other.body).lower()
    for path in ("/api/v1/links", "/api/v1/contracts", "/api/v1/credits", "/api/v1/reports/sla"):
        params = {"customer": "globex", "window": "2026-W47"} if "reports" in path else {}
        other = await alice.call("GET", path, 404, params={"customer": "globex", **params})
        missing = await alice.call("GET", path, 404, params={**params, "customer": "nobody"})
        assert other.body == missing.body
    theirs = [row.id for row in await list_rows(world.kit.db, customer="globex")]
    assert theirs
    missing_credit = await alice.get(f"/api/v1/credits/{MISSING_CREDIT}", 404)
    for row_id in theirs:
        assert await alice.get(f"/api/v1/credits/{row_id}", 404) == missing_credit
    link = await alice.call("GET", "/api/v1/maintenance", 404, params={"link": "globex-nyc-1"})
    assert link.body == (await alice.call("GET", "/api/v1/maintenance", 404,
                                          params={"link": "nope"})).body  # fmt: skip


@pytest.mark.parametrize(
    ("user", "own_links", "own_marks", "others_marks"),
    [
        ("alice", ACME_LINKS, ("acme-fra-gold", "Router swap in Berlin"), GLOBEX_MARKS),
        ("gus", GLOBEX_LINKS, ("globex-nyc-platinum", "Fibre duct works"), ACME_MARKS),
    ],
)
async def test_nothing_a_customer_reads_mentions_another_customer(
    world: World,
    user: str,
    own_links: list[str],
    own_marks: tuple[str, ...],
    others_marks: tuple[str, ...],
) -> None:
    caller = world.api(user)
    bodies = [
        await caller.get(f"/api/v1{path}")
        for path in ("/me", "/links", "/contracts", "/credits", "/maintenance")
    ]
    for window in LEDGER_WINDOWS:
        # A window with nothing measured for the caller has no report: a 404 that says why.
        answer = await caller.call("GET", "/api/v1/reports/sla", None, params={"window": window})
        assert answer.status in (200, 404), answer.body
        bodies.append(answer.body)
    for link_id in own_links:
        for tail in ("", "/incidents", "/availability", "/series"):
            bodies.append(await caller.get(f"/api/v1/links/{link_id}{tail}"))
    text = json.dumps(bodies)
    for mark in others_marks:
        assert mark not in text
    for mark in own_marks:
        assert mark in text


async def test_contracts_show_their_terms(world: World) -> None:
    alice = await world.api("alice").get("/api/v1/contracts")
    assert ids(alice["items"]) == ["acme-ber-silver", "acme-fra-gold"]
    gold = alice["items"][1]
    assert gold["links"] == ["acme-fra-1"]
    terms = gold["terms"]
    assert (terms["target_pct"], terms["fee"], terms["currency"]) == ("99.5", "250.00", "EUR")
    assert terms["window"] == "week"
    assert terms["credit"]["step_pct"] == "0.5"
    staff = await world.api("olga").get("/api/v1/contracts", customer="globex")
    assert ids(staff["items"]) == ["globex-bos-basic", "globex-nyc-platinum"]


async def test_maintenance_shows_only_what_concerns_the_callers_links(world: World) -> None:
    alice = (await world.api("alice").get("/api/v1/maintenance", **{"from": "2026-11-01"}))["items"]
    assert ids(alice) == ["mw-everything", "mw-berlin", "mw-duct"]
    duct = alice[2]
    assert duct["link_ids"] == ["acme-fra-1"]  # not the other customer's link
    assert alice[0]["everything"] is True
    staff = await world.api("olga").get("/api/v1/maintenance", **{"from": "2026-11-01"})
    assert ids(staff["items"]) == ["mw-everything", "mw-berlin", "mw-gx-core", "mw-duct"]
    assert staff["items"][3]["link_ids"] == ["acme-fra-1", "globex-nyc-1"]
    berlin = await world.api("alice").get("/api/v1/maintenance", link="acme-ber-2")
    assert ids(berlin["items"]) == ["mw-everything", "mw-berlin"]


# --- links' history and figures ------------------------------------------------------------


async def test_incidents_come_newest_first_with_their_real_start(world: World) -> None:
    alice = world.api("alice")
    found = await alice.walk("/api/v1/links/acme-fra-1/incidents", limit="1")
    starts = [i["starts_at"] for i in found]
    hours = timedelta(hours=1)
    assert starts == [(NOW - 5 * hours).isoformat(), (NOW - 6 * hours).isoformat()]
    assert [i["duration_s"] for i in found] == [600, 600]
    assert found[0]["probes"][0]["error"] == "no reply (5/5 lost)"
    [running] = (await alice.get("/api/v1/links/acme-ber-2/incidents"))["items"]
    assert running["running"] is True
    assert running["ends_at"] is None
    # An outage that began before `from` shows its real start.
    since = (NOW - timedelta(minutes=5)).isoformat()
    [late] = (await alice.get("/api/v1/links/acme-ber-2/incidents", **{"from": since}))["items"]
    assert late["starts_at"] == (NOW - timedelta(minutes=25)).isoformat()
    none = await alice.get("/api/v1/links/acme-fra-1/incidents", to="2026-11-01")
    assert none["items"] == []


async def test_series_come_per_hour_or_day_from_the_rollups(world: World) -> None:
    alice = world.api("alice")
    hourly = await alice.get("/api/v1/links/acme-fra-1/series", range="4h")
    assert hourly["bucket"] == "hour"
    points = hourly["items"]
    assert [p["bucket_start"] for p in points] == [
        (NOW - timedelta(hours=h)).isoformat() for h in (4, 3, 2, 1)
    ]
    last = points[-1]
    assert (last["samples_up"], last["samples_down"], last["samples_expected"]) == (60, 0, 60)
    assert last["rtt_mean_ms"] == pytest.approx(12.34)
    daily = await alice.get("/api/v1/links/acme-fra-1/series", bucket="day", range="2d")
    [today] = [p for p in daily["items"] if p["bucket_start"].startswith("2026-11-18")]
    assert today["samples_down"] == 20
    assert today["samples_up"] == 8 * 60 - 20


async def test_availability_and_reports_are_the_sla_records(world: World) -> None:
    kit = world.kit
    expected = json.loads(
        to_json(
            [
                record(item, NOW)
                for item in await contract_windows(kit.db, kit.config, "2026-W47", NOW)
            ]
        )
    )
    report = await world.api("olga").walk("/api/v1/reports/sla", window="2026-W47", limit="1")
    assert report == sorted(expected, key=lambda r: (r["contract"], r["link"]))
    alice = await world.api("alice").get("/api/v1/reports/sla", window="2026-W47")
    assert alice["items"] == [r for r in report if r["customer"] == "acme"]
    running = await world.api("alice").get("/api/v1/links/acme-fra-1/availability")
    [gold] = running["items"]
    assert (gold["contract"], gold["window"], gold["contractual"]) == (
        "acme-fra-gold",
        "2026-W47",
        True,
    )
    assert {k: v for k, v in gold.items() if k != "contractual"} == next(
        r for r in report if r["contract"] == "acme-fra-gold"
    )
    month = await world.api("alice").get("/api/v1/links/acme-fra-1/availability", window="2026-11")
    [over_month] = month["items"]
    assert (over_month["window"], over_month["contractual"]) == ("2026-11", False)


# --- paging --------------------------------------------------------------------------------


async def test_pages_hold_every_item_exactly_once(world: World) -> None:
    bill = world.api("bill")
    everything = [row.id for row in await list_rows(world.kit.db)]
    assert len(everything) == 7  # no 2026-10 row of the never-measured globex-bos-2
    for size in ("1", "3", "8", "500"):
        assert ids(await bill.walk("/api/v1/credits", limit=size)) == everything
    closed = [row.id for row in await list_rows(world.kit.db, status="closed")]
    assert ids(await bill.walk("/api/v1/credits", status="closed", limit="1")) == closed
    olga = world.api("olga")
    assert ids(await olga.walk("/api/v1/links", limit="3")) == sorted(ACME_LINKS + GLOBEX_LINKS)
    assert ids(await olga.walk("/api/v1/maintenance", limit="2", **{"from": "2026-11-01"})) == [
        "mw-everything",
        "mw-berlin",
        "mw-gx-core",
        "mw-duct",
    ]
    first = await bill.get("/api/v1/credits", limit="3")
    assert len(first["items"]) == 3
    last = await bill.get("/api/v1/credits", limit="8")
    assert last["next_cursor"] is None


async def test_a_cursor_works_only_unchanged_and_for_its_own_query(world: World) -> None:
    bill = world.api("bill")
    cursor = (await bill.get("/api/v1/credits", limit="2"))["next_cursor"]
    assert cursor
    payload, signature = cursor.split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    links_cursor = (await world.api("olga").get("/api/v1/links", limit="1"))["next_cursor"]
    for bad, params in (
        (f"{flipped}.{signature}", {}),
        ("garbage", {}),
        ("a.b.c", {}),
        ("\u00e9.x", {}),
        (cursor, {"status": "closed"}),  # another query's cursor
        (links_cursor, {}),
    ):
        answer = await bill.call("GET", "/api/v1/credits", 400, params={"cursor": bad, **params})
        assert "cursor=" in answer.body["error"]["message"]
    assert (await bill.get("/api/v1/credits", cursor=cursor, limit="5"))["items"]


# --- bad requests --------------------------------------------------------------------------


INCIDENTS = "/api/v1/links/acme-fra-1/incidents"
SERIES = "/api/v1/links/acme-fra-1/series"
LIMIT_SAYS = "limit='0' is not allowed; use a whole number from 1 to 500"
WINDOW_SAYS = (
    "is not a window; use an ISO week such as 2026-W47 (W01 to W53), a month such as "
    "2026-11 (01 to 12), a quarter such as 2026-Q3 (Q1 to Q4) or a year such as 2026, in "
    "the years 1970 to 9998"
)
TIME_SAYS = (
    "is not a time; use RFC 3339 such as 2026-11-24T08:00:00Z, or a date such as "
    "2026-11-24, in the years 1970 to 9998"
)
RANGE_SAYS = (
    "is not a duration; use a number with a unit ms, s, m, h, d or w (at most three "
    "decimals), more than zero, such as 6h, 7d or 1h30m"
)
HOURS_AT_MOST = "at most 31 days with bucket=hour (bucket=day allows 400 days)"


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("/api/v1/links", {"limit": "0"}, LIMIT_SAYS),
        ("/api/v1/links", {"limit": "abc"}, "limit='abc'"),
        ("/api/v1/links", {"limit": "\u00b2"}, "limit='\u00b2'"),
        ("/api/v1/links", {"limit": "501"}, "limit='501'"),
        ("/api/v1/links", {"limit": ""}, "limit is empty"),
        ("/api/v1/links", {"status": "purple"}, "status='purple' is not allowed; use one of up,"),
        ("/api/v1/links", {"custmer": "acme"}, "unknown query parameter 'custmer'"),
        ("/api/v1/links", {"cursor": "0"}, "cursor='0' is not valid here; pass the next_cursor"),
        ("/api/v1/links", {"customer": "Acme Corp"}, "customer='Acme Corp' is not an id; ids"),
        ("/api/v1/maintenance", {"link": "ACME-FRA-1"}, "link='ACME-FRA-1' is not an id"),
        ("/api/v1/credits", {"window": "2026-13"}, f"window='2026-13' {WINDOW_SAYS}"),
        ("/api/v1/credits", {"window": "0000-W00"}, f"window='0000-W00' {WINDOW_SAYS}"),
        ("/api/v1/credits", {"window": "2026-W54"}, f"window='2026-W54' {WINDOW_SAYS}"),
        ("/api/v1/credits", {"window": "2026-W47\n"}, WINDOW_SAYS),
        ("/api/v1/credits", {"status": "paid"}, "status='paid' is not allowed"),
        ("/api/v1/reports/sla", {}, "window is required"),
        ("/api/v1/reports/sla", {"window": "week 47"}, f"window='week 47' {WINDOW_SAYS}"),
        ("/api/v1/links/acme-fra-1/availability", {"window": "1969-12"}, WINDOW_SAYS),
        (INCIDENTS, {"from": "yesterday"}, f"from='yesterday' {TIME_SAYS}"),
        (INCIDENTS, {"from": "20261118"}, f"from='20261118' {TIME_SAYS}"),
        (INCIDENTS, {"from": "2026-02-30"}, "from='2026-02-30' is not a time: there is no such"),
        (INCIDENTS, {"from": "2026-11-18T10:00:00"}, "has no UTC offset"),
        (INCIDENTS, {"from": "2026-12-31T23:59:60Z"}, TIME_SAYS),  # Python has no leap second
        (INCIDENTS, {"from": "2026-11-18T10:00:00+24:00"}, TIME_SAYS),
        (INCIDENTS, {"from": "1969-12-31"}, f"from='1969-12-31' {TIME_SAYS}"),
        ("/api/v1/maintenance", {"to": "9999-12-31T23:00:00-05:00"}, TIME_SAYS),
        (SERIES, {"bucket": "minute"}, "bucket='minute' is not allowed"),
        (SERIES, {"range": "0ms"}, f"range='0ms' {RANGE_SAYS}"),
        (SERIES, {"range": "0.0001ms"}, RANGE_SAYS),  # less than a microsecond
        (SERIES, {"range": "-1h"}, RANGE_SAYS),
        (SERIES, {"range": "40d"}, f"range='40d' is longer than allowed: {HOURS_AT_MOST}"),
        (SERIES, {"range": "9" * 30 + "d"}, "is longer than allowed: at most 31 days"),
        (SERIES, {"range": "401d", "bucket": "day"}, "at most 400 days with bucket=day"),
        (SERIES, {"range": "1d", "from": "2026-11-01"}, "give from or range, not both"),
        (
            SERIES,
            {"from": "2000-01-01"},
            "is longer than allowed; ask for at most 31 days at a time with bucket=hour "
            "(bucket=day allows 400 days)",
        ),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    world: World, path: str, params: dict[str, str], says: str
) -> None:
    answer = await world.api("ada").call("GET", path, 400, params=params)
    assert says in answer.body["error"]["message"]


async def test_a_well_formed_window_without_a_report_is_404_saying_why(world: World) -> None:
    alice = world.api("alice")
    # 2025 has 52 ISO weeks: its W53 fits the pattern but names no window, wherever asked.
    for path in (
        "/api/v1/credits",
        "/api/v1/reports/sla",
        "/api/v1/links/acme-fra-1/availability",
    ):
        answer = await alice.call("GET", path, 404, params={"window": "2025-W53"})
        assert answer.body["error"]["message"] == (
            "window='2025-W53': 2025 has 52 ISO weeks, so there is no such window; its last "
            "week is 2025-W52"
        )
    # 2026 has a week 53, which has not begun: there is no report of it yet.
    later = await alice.call("GET", "/api/v1/reports/sla", 404, params={"window": "2026-W53"})
    assert later.body["error"]["message"] == (
        "window='2026-W53' has not begun yet: it begins 2026-12-28 00:00 CET (Europe/Berlin) "
        "for acme-fra-gold"
    )
    availability = "/api/v1/links/acme-fra-1/availability"
    december = await alice.call("GET", availability, 404, params={"window": "2026-12"})
    assert december.body["error"]["message"] == (
        "window='2026-12' has not begun yet: it begins 2026-12-01 00:00 CET (Europe/Berlin) "
        "for acme-fra-gold"
    )
    # September ended before Acme's links were first measured.
    before = await alice.call("GET", "/api/v1/reports/sla", 404, params={"window": "2026-09"})
    assert before.body["error"]["message"].startswith(
        "window='2026-09' was not measured: monitoring of "
    )
    # A real window the ledger has no row for is simply an empty list of credits.
    assert (await alice.get("/api/v1/credits", window="2026-W53"))["items"] == []


async def test_a_paged_list_takes_any_span_and_an_empty_range_holds_nothing(
    world: World,
) -> None:
    alice, olga = world.api("alice"), world.api("olga")
    since_monitoring = await alice.walk(INCIDENTS, **{"from": "2026-10-01"})
    assert len(since_monitoring) >= 2
    # Further back than anything stored is everything stored, not a 400.
    assert await alice.walk(INCIDENTS, **{"from": "1970-01-01"}) == since_monitoring
    everything = await olga.walk(
        "/api/v1/maintenance", **{"from": "2000-01-01", "to": "2100-01-01"}
    )
    assert ids(everything) == ["mw-everything", "mw-berlin", "mw-gx-core", "mw-duct"]

    # Five minutes into the outage that began six hours ago.
    inside = NOW - timedelta(hours=6) + timedelta(minutes=5)
    at, second = inside.isoformat(), (inside + timedelta(seconds=1)).isoformat()
    [outage] = (await alice.get(INCIDENTS, **{"from": at, "to": second}))["items"]
    assert outage["starts_at"] == (NOW - timedelta(hours=6)).isoformat()
    # An empty range, or a reversed one, holds nothing, even inside an outage.
    assert (await alice.get(INCIDENTS, **{"from": at, "to": at}))["items"] == []
    assert (await alice.get(INCIDENTS, **{"from": second, "to": at}))["items"] == []
    assert (await alice.get(INCIDENTS, **{"from": "2030-01-01"}))["items"] == []
    berlin = (NOW + timedelta(days=1, hours=1)).isoformat()  # mw-berlin's second hour
    assert (await alice.get("/api/v1/maintenance", **{"from": berlin, "to": berlin}))["items"] == []
    series = await alice.get(SERIES, **{"from": NOW.isoformat(), "to": "2026-11-18T08:00:00Z"})
    assert (series["from"], series["to"], series["items"]) == (
        NOW.isoformat(),
        "2026-11-18T08:00:00+00:00",
        [],
    )


async def test_a_parameter_given_twice_is_400(world: World) -> None:
    answer = await world.api("olga").call("GET", "/api/v1/links?status=up&status=down", 400)
    assert answer.body["error"]["message"] == "give status once"


async def test_unsupported_methods_and_paths_answer_json(world: World) -> None:
    olga = world.api("olga")
    wrong = await olga.call("PUT", "/api/v1/links", 405, data=b"")
    assert "GET" in wrong.headers["Allow"]
    await olga.call("GET", "/api/v1/credits/1/approve", 405)
    await olga.call("GET", "/api/v1/nothing", 404)


# --- tokens --------------------------------------------------------------------------------


async def test_only_a_live_token_of_an_enabled_user_gets_in(world: World) -> None:
    kit = world.kit
    short = await make_token(kit, "alice", expires_at=NOW + timedelta(days=1))
    disabled = await make_token(kit, "dave")
    live = Api(kit, world.document, short)
    assert (await live.get("/api/v1/me"))["name"] == "alice"
    for token in (disabled, "lw_made-up", "not-even-ours", ""):
        answer = await Api(kit, world.document, token).call("GET", "/api/v1/links", 401)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    for header in ("Basic YWxpY2U6cHc=", f"Token {short}", "Bearer"):
        await Api(kit, world.document, None).call(
            "GET", "/api/v1/links", 401, headers={"Authorization": header}
        )
    kit.clock.advance(timedelta(days=2))
    expired = await live.call("GET", "/api/v1/links", 401)
    assert expired.body["error"]["status"] == 401
    accounts = kit.client.server.app[ACCOUNTS]
    alice = await accounts.user("alice")
    assert alice is not None
    for token in await accounts.tokens(alice):
        await accounts.revoke_token(alice, token.id, kit.clock())
    await world.api("alice").call("GET", "/api/v1/me", 401)


# --- the ledger through the API ------------------------------------------------------------


async def _closed_acme_row(kit: PortalKit, *, flagged: bool = False) -> int:
    rows = await list_rows(kit.db, customer="acme", status="closed")
    return next(r.id for r in rows if r.needs_review is flagged)


async def test_billing_approves_and_applies_as_itself(world: World) -> None:
    kit, bill = world.kit, world.api("bill")
    row_id = await _closed_acme_row(kit)
    approved = await bill.post(f"/api/v1/credits/{row_id}/approve")
    assert (approved["status"], approved["approved_by"]) == ("approved", "bill")
    applied = await bill.post(
        f"/api/v1/credits/{row_id}/apply", json={"invoice_ref": "INV-2026-0042"}
    )
    assert (applied["status"], applied["applied_by"], applied["invoice_ref"]) == (
        "applied",
        "bill",
        "INV-2026-0042",
    )
    [stored] = [r for r in await list_rows(kit.db) if r.id == row_id]
    assert (stored.status, stored.approved_by, stored.applied_by) == ("applied", "bill", "bill")
    actors = {(e.action, e.actor) for e in await audit_log(kit.db, [row_id])}
    assert {("approved", "bill"), ("applied", "bill")} <= actors
    assert await bill.get(f"/api/v1/credits/{row_id}") == applied
    # The customer sees the outcome of their own credit.
    assert (await world.api("alice").get(f"/api/v1/credits/{row_id}"))["status"] == "applied"
    assert (await world.api("ada").get(f"/api/v1/credits/{row_id}"))["invoice_ref"] == (
        "INV-2026-0042"
    )


async def test_what_the_ledger_refuses_is_409_and_changes_nothing(world: World) -> None:
    kit, bill = world.kit, world.api("bill")
    row_id = await _closed_acme_row(kit)
    open_row = (await list_rows(kit.db, customer="acme", status="open"))[0].id
    before = (await list_rows(kit.db), await audit_log(kit.db))
    refused = await bill.post(f"/api/v1/credits/{open_row}/approve", 409)
    assert "only closed rows can be approved" in refused["error"]["message"]
    not_yet = await bill.post(f"/api/v1/credits/{row_id}/apply", 409, json={"invoice_ref": "X"})
    assert "approve it before applying it" in not_yet["error"]["message"]
    assert (await list_rows(kit.db), await audit_log(kit.db)) == before
    await bill.post(f"/api/v1/credits/{row_id}/approve")
    again = await bill.post(f"/api/v1/credits/{row_id}/approve", 409)
    assert "already approved" in again["error"]["message"]

    # A row flagged for review (measured for a sliver of its window) takes a note.
    flagged = await _closed_acme_row(kit, flagged=True)
    unnoted = await bill.post(f"/api/v1/credits/{flagged}/approve", 409)
    assert "needs review: coverage 0.0067 % is under 90 %" in unnoted["error"]["message"]
    assert "approve it with a note saying what you checked" in unnoted["error"]["message"]
    await bill.post(f"/api/v1/credits/{flagged}/approve", 400, json={"note": "  "})
    noted = await bill.post(
        f"/api/v1/credits/{flagged}/approve", json={"note": "probe host was unplugged"}
    )
    assert (noted["status"], noted["needs_review"], noted["approval_note"]) == (
        "approved",
        True,
        "probe host was unplugged",
    )


async def test_only_billing_and_admin_settle_and_others_see_nothing_there(world: World) -> None:
    kit = world.kit
    row_id = await _closed_acme_row(kit)
    for name in ("alice", "gus", "olga"):
        caller = world.api(name)
        mine = await caller.post(f"/api/v1/credits/{row_id}/approve", 404)
        missing = await caller.post(f"/api/v1/credits/{MISSING_CREDIT}/approve", 404)
        assert mine == missing
        await caller.post(f"/api/v1/credits/{row_id}/apply", 404, json={"invoice_ref": "X"})
    # Ops have no ledger at all, as on the pages.
    await world.api("olga").get("/api/v1/credits", 404)
    await world.api("olga").get(f"/api/v1/credits/{row_id}", 404)
    [row] = [r for r in await list_rows(kit.db) if r.id == row_id]
    assert row.status == "closed"
    assert (await world.api("ada").post(f"/api/v1/credits/{row_id}/approve"))["approved_by"] == (
        "ada"
    )


async def test_request_bodies_must_be_small_json_objects(world: World) -> None:
    kit, bill = world.kit, world.api("bill")
    row_id = await _closed_acme_row(kit)
    await bill.post(f"/api/v1/credits/{row_id}/approve")
    path = f"/api/v1/credits/{row_id}/apply"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    as_json = {"Content-Type": "application/json"}
    for status, headers, data, says in (
        (415, form, b"invoice_ref=X", "send it as application/json"),
        (415, {"Content-Type": "text/plain"}, b'{"invoice_ref": "X"}', "application/json"),
        (415, {"Content-Type": "application/json; charset=latin-1"}, b"{}", "charset"),
        (400, as_json, b'{"invoice_ref": ', "not valid JSON"),
        (400, as_json, b"\xff\xfe", "not UTF-8"),
        (400, as_json, b"[" * 50_000, "nested too deeply"),
        (400, as_json, b'["INV-1"]', "must be a JSON object"),
        (400, as_json, b'{"invoice_ref": "X", "amount": 1}', "unknown field 'amount'"),
        (400, as_json, b'{"invoice_ref": 7}', "invoice_ref is required"),
        (400, as_json, b'{"invoice_ref": "   "}', "invoice_ref is required"),
        (400, as_json, json.dumps({"invoice_ref": "x" * 201}).encode(), "at most 200"),
        (400, as_json, json.dumps({"invoice_ref": "INV\x001"}).encode(), "a NUL character"),
        (400, {}, b"", "invoice_ref is required"),
        (413, as_json, b'{"invoice_ref": "' + b"x" * 100_000 + b'"}', "too large"),
    ):
        answer = await bill.call("POST", path, status, headers=headers, data=data)
        assert says in answer.body["error"]["message"], answer.body
    [row] = [r for r in await list_rows(kit.db) if r.id == row_id]
    assert row.status == "approved"


# --- failures ------------------------------------------------------------------------------


async def test_failures_never_leak_internals(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError('relation "samples" does not exist: SELECT * FROM samples')

    async def database_away(*args: object, **kwargs: object) -> object:
        raise DatabaseError("connection refused: postgresql://linkwatch:secret@db/linkwatch")

    alice = world.api("alice")
    for failure, status in ((broken, 500), (database_away, 503)):
        monkeypatch.setattr(reads, "incidents", failure)
        answer = await alice.call("GET", "/api/v1/links/acme-fra-1/incidents", status)
        text = json.dumps(answer.body)
        for leak in ("SELECT", "Traceback", "secret", "postgresql", "RuntimeError"):
            assert leak not in text
    assert answer.headers["Retry-After"] == "10"


# --- the property-based run ----------------------------------------------------------------

# `schemathesis run --checks all` against the live portal: every operation, with requests
# the document allows (none may be a 400 or a 5xx, and each answer must be what the
# document says) and requests it forbids (each must be a 4xx), no operation that ignores
# its token, and no object of one customer's that another customer gets. A fixed seed and
# a bounded number of examples keep it repeatable and short.
FUZZ_SEED = 20261118
FUZZ_EXAMPLES = 25
# Each run's user, and the users it compares with for object-level authorization.
FUZZ_RUNS = (("alice", ("alice", "gus")), ("bill", ("bill", "gus", "alice")))
REPOSITORY = Path(__file__).resolve().parent.parent


def fuzz_config(tmp_path: Path, credit_ids: list[int], peers: tuple[str, ...]) -> str:
    """The run's config. Half the time a path or window parameter names something that
    exists (links of both customers, their ledger rows, windows with data), so scope
    decisions and real answers are exercised, not only 404s."""
    return f"""
hooks = "tests.api_fuzz_hooks"
seed = {FUZZ_SEED}

[cache]
enabled = false  # no failures replayed from an earlier run: each run is the same

[generation]
max-examples = {FUZZ_EXAMPLES}
mode = "all"
database = "none"

[dictionaries.links]
values = {json.dumps([*ACME_LINKS, *GLOBEX_LINKS, "no-such-link"])}

[dictionaries.credits]
values = {json.dumps([*credit_ids, MISSING_CREDIT])}

[dictionaries.windows]
values = {json.dumps(LEDGER_WINDOWS)}

[parameters]
"path.link_id" = {{ dictionary = "links", probability = 0.5 }}
"query.link" = {{ dictionary = "links", probability = 0.5 }}
"path.credit_id" = {{ dictionary = "credits", probability = 0.5 }}
"query.window" = {{ dictionary = "windows", probability = 0.5 }}

[auth.wfc]
path = {json.dumps(str(tmp_path / "auth.json"))}
peers = {json.dumps(list(peers))}
"""


async def run_schemathesis(world: World, tmp_path: Path, user: str) -> tuple[int, str]:
    """`schemathesis run --checks all` as `user`, in its own process (the portal answers
    on this test's event loop); its exit status and output."""
    base_url = str(world.kit.client.make_url("")).rstrip("/")
    assert base_url.startswith("http://127.0.0.1:")
    command = [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", str(tmp_path / f"{user}.toml"),
        "run", str(tmp_path / "openapi.json"),
        "--url", base_url,
        "--checks", "all",
        "--mode", "all",
        "--seed", str(FUZZ_SEED),
        "--max-examples", str(FUZZ_EXAMPLES),
        "--workers", "1",
        "--auth-wfc", str(tmp_path / "auth.json"),
        "--auth-wfc-user", user,
        "--report", "junit", "--report-junit-path", str(tmp_path / f"{user}.xml"),
        "--no-color",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=REPOSITORY,
        env={
            **os.environ,
            "FUZZ_BASE_URL": base_url,
            "FUZZ_TOKEN": world.tokens[user],
            "FUZZ_NOW": NOW.isoformat(),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


async def test_the_api_follows_its_openapi_document(world: World, tmp_path: Path) -> None:
    (tmp_path / "openapi.json").write_text(json.dumps(world.document))
    users = [
        {"name": name, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {token}"}]}
        for name, token in world.tokens.items()
    ]
    (tmp_path / "auth.json").write_text(json.dumps({"auth": users}))
    credit_ids = [row.id for row in await list_rows(world.kit.db)]
    operations = {
        f"{method.upper()} {path}"
        for path, methods in world.document["paths"].items()
        for method in methods
    }
    for user, peers in FUZZ_RUNS:
        (tmp_path / f"{user}.toml").write_text(fuzz_config(tmp_path, credit_ids, peers))
        status, output = await run_schemathesis(world, tmp_path, user)
        assert status == 0, output[-8000:]
        # The run's own report, written a moment ago by the process above.
        report = ET.parse(tmp_path / f"{user}.xml").getroot()  # noqa: S314
        tested = {case.get("name") for case in report.iter("testcase")}
        assert operations <= tested, output[-3000:]
