"""One link's page: live status and probes, availability against each contract (this week
and this month, with the error budget), 90 days of daily availability, incidents,
maintenance, RTT and loss charts (staff also jitter and interface traffic), the HTTP
probes' response time, their last check step by step and their phases over time, and the
credits of the link's contracts.

The page and its refresh fragment answer 404 alike for a link that does not exist and for
one the viewer may not see; the scope check comes before any read, so every cache key
below names a link (or the shared maintenance list), never a viewer. Every availability
figure is exact and truncated like the SLA engine's, never rounded up. The refresh
fragment carries what moves (status, budgets, probes); the page adds the history.

This module reads (through `PortalReads`), builds the views (`portal.link_views`,
`portal.link_charts`, and the shared credit and maintenance views) and renders them.
Nothing here writes to the database or reads data of a link other than the one asked for,
except the maintenance list, which is filtered to the link before it reaches a template.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from markupsafe import Markup

from collector.attributions import Attribution
from collector.rollups import BUCKET_ORIGIN
from collector.series import SampleBucket
from collector.state_reads import Incident
from kernel.config import RESPONSE_TIME_KINDS, Config, Contract, Link
from kernel.domain import LinkStatus, MaintenanceWindow
from kernel.formatting import DEFAULT_AVAILABILITY_DECIMALS
from portal.attribution_views import attribution_view, of_incident, policies
from portal.auth import Viewer
from portal.board import LinkRow, link_row
from portal.credit_views import credit_view
from portal.incident_views import HISTORY, causes_of
from portal.keys import CACHE, CLOCK, LIVE, READS
from portal.link_charts import (
    DAYS,
    DEFAULT_RANGE,
    PHASE_RANGES,
    RANGES,
    TRAFFIC_RANGES,
    ChartData,
    DayFigures,
    chart_views,
    chart_window,
    day_bar,
    day_figures,
    local_midnight,
)
from portal.link_views import (
    WindowView,
    covers,
    incident_view,
    outage_view,
    phases_view,
    window_view,
)
from portal.maintenance_views import maintenance_view, outage_note, strictest_notice
from portal.pages.acknowledgements import response_times
from portal.pages.common import require_viewer, visible_link
from portal.pages.incidents import link_incidents
from portal.params import choice
from portal.rendering import render, render_fragment
from portal.scope import Directory, can
from sla.compute import decide_maintenance, exclusions
from sla.ledger import LedgerRow
from sla.report import ContractWindow, concerns
from sla.windows import WindowKind

routes = web.RouteTableDef()

LEDGER_WINDOWS = 13  # windows per contract on the link page; /credits has them all


# --- what the page reads ---------------------------------------------------------------------


def link_contracts(directory: Directory, viewer: Viewer, link: Link) -> list[Contract]:
    return [
        c
        for c in directory.contracts_of_link(link.id)
        if directory.may_see_customer(viewer.user, c.customer)
    ]


def concerning(windows_: Iterable[MaintenanceWindow], link: Link) -> list[MaintenanceWindow]:
    return [w for w in windows_ if concerns(w, link.id, link.customer)]


async def days_of(
    app: web.Application, link: Link, contracts: Sequence[Contract], now: datetime
) -> list[DayFigures]:
    tz = app[LIVE].directory.customer_tz(link.customer)
    first = now.astimezone(tz).date() - timedelta(days=DAYS - 1)
    start = local_midnight(first, tz)
    found = await app[READS].recent_intervals(link.id, start, now)
    planned = concerning(await app[READS].maintenance_around(now), link)
    notice = strictest_notice(contracts, app[LIVE].config, now)
    excluded = [(e.start, e.end) for e in exclusions(decide_maintenance(planned, notice))]
    return day_figures(found, excluded, tz, now)


async def ledger_of(
    app: web.Application, link: Link, contracts: Sequence[Contract]
) -> list[LedgerRow]:
    """The newest ledger rows of the link's contracts for this link (or its redundant
    group), with their adjustments, newest window first."""
    pairs = [
        (c.id, f"group:{c.id}" if c.group == "redundant" else link.id)
        for c in contracts
        if c.customer == link.customer
    ]
    if not pairs:
        return []
    return await app[READS].link_ledger(link.customer, pairs, LEDGER_WINDOWS)


async def chart_data(
    app: web.Application, link: Link, name: str, now: datetime, *, traffic: bool
) -> ChartData:
    """RTT, loss and jitter per probe over the range (rollups where they serve, raw
    samples for 24 hours); with `traffic`, the SNMP probes' interface rates instead."""
    spec = RANGES[name]
    start, end = chart_window(spec, now)
    reads = app[READS]
    found: Sequence[SampleBucket]
    if traffic:
        snmp = [p.id for p in link.probes if p.kind == "snmp"]
        found = await reads.recent_sample_buckets(
            link.id, snmp, start, end, spec.step, BUCKET_ORIGIN
        )
    elif spec.bucket == "raw":
        probes = [p.id for p in link.probes]
        found = await reads.recent_sample_buckets(
            link.id, probes, start, end, spec.step, BUCKET_ORIGIN
        )
    else:
        read = await reads.recent_rollups(link.id, start, end, spec.bucket)
        found = [
            SampleBucket(r.probe_id, r.bucket_start, r.rtt_mean_ms, r.rtt_p95_ms,
                   r.loss_mean_pct, r.jitter_mean_ms)
            for r in read
        ]  # fmt: skip
    return ChartData(start, end, spec.step, tuple(found))


async def phase_data(app: web.Application, link: Link, name: str, now: datetime) -> ChartData:
    """The HTTP probes' response phases per bucket over the range, from raw samples."""
    spec = RANGES[name]
    start, end = chart_window(spec, now)
    http = [p.id for p in link.probes if p.kind in RESPONSE_TIME_KINDS]
    found = await app[READS].recent_sample_buckets(
        link.id, http, start, end, spec.step, BUCKET_ORIGIN
    )
    return ChartData(start, end, spec.step, tuple(found))


# --- the page ------------------------------------------------------------------------------------


async def _live(request: web.Request, viewer: Viewer, link: Link) -> dict[str, Any]:
    """What the refresh fragment shows: status, probes, this week's and month's budgets."""
    app = request.app
    directory = app[LIVE].directory
    now = app[CLOCK]()
    tz = directory.viewer_tz(viewer.user)
    contracts = link_contracts(directory, viewer, link)
    reads = app[READS]
    http = [p.id for p in link.probes if p.kind in RESPONSE_TIME_KINDS]
    states, active, weekly, monthly, checks = await asyncio.gather(
        reads.link_states([link], f"link:{link.id}", now),
        reads.active_maintenance(now),
        reads.windows(contracts, "week", now),
        reads.windows(contracts, "month", now),
        reads.latest_checks(link.id, http, now),
    )
    row: LinkRow = link_row(directory, link, states.get(link.id), active, now, tz)
    down_now = row.measured is LinkStatus.DOWN
    staff = viewer.user.is_staff
    sla: list[tuple[Contract, list[WindowView]]] = []
    kinds: tuple[tuple[WindowKind, list[ContractWindow]], ...] = (
        ("week", weekly),
        ("month", monthly),
    )
    for contract in contracts:
        views = [
            window_view(item, kind, down_now=down_now, staff=staff, now=now, tz=tz)
            for kind, found in kinds
            for item in found
            if item.contract.id == contract.id and covers(item, link.id)
        ]
        # The contractual window first: it is the one that earns credits.
        views.sort(key=lambda v: not v.contractual)
        if views:
            sla.append((contract, views))
    outage = None
    if down_now and row.since is not None:
        state = states.get(link.id)
        since = state.since if state is not None else None
        if since is not None:
            outage = outage_view(row.since, since, now)
    return {
        "row": row,
        "sla": sla,
        "outage": outage,
        "phases": [v for c in checks if (v := phases_view(link, c, now, tz)) is not None],
        "updated": now.astimezone(tz).strftime("%H:%M:%S %Z"),
    }


def bar_decimals(config: Config, contracts: Sequence[Contract], now: datetime) -> int:
    """Decimals of the day bar's availability: the link's, not one window's; its
    contracts' when they agree, the default when it has none or they differ."""
    found = {config.availability_decimals(c.id, now) for c in contracts}
    return found.pop() if len(found) == 1 else DEFAULT_AVAILABILITY_DECIMALS


async def _history(
    request: web.Request, viewer: Viewer, link: Link, range_name: str
) -> dict[str, Any]:
    """What only the full page shows: the bar, charts, incidents, maintenance, credits."""
    app = request.app
    directory = app[LIVE].directory
    config = app[LIVE].config
    now = app[CLOCK]()
    tz = directory.viewer_tz(viewer.user)
    staff = viewer.user.is_staff
    contracts = link_contracts(directory, viewer, link)

    async def no_traffic() -> ChartData | None:
        return None

    http = any(p.kind in RESPONSE_TIME_KINDS for p in link.probes)

    async def raw_charts() -> tuple[ChartData | None, ChartData | None]:
        """Interface traffic and response phases, which come from raw samples."""
        return await asyncio.gather(
            chart_data(app, link, range_name, now, traffic=True)
            if staff and range_name in TRAFFIC_RANGES and any(p.kind == "snmp" for p in link.probes)
            else no_traffic(),
            phase_data(app, link, range_name, now)
            if http and range_name in PHASE_RANGES
            else no_traffic(),
        )

    days, found, planned, ledger, data, (traffic, phases) = await asyncio.gather(
        days_of(app, link, contracts, now),
        app[READS].recent_incidents(link.id, DAYS, now),
        app[READS].maintenance_around(now),
        ledger_of(app, link, contracts),
        chart_data(app, link, range_name, now, traffic=False),
        raw_charts(),
    )
    attributed = await attributions_of(app, link, found, now)
    policy = policies(contracts, config, now)
    # Staff see how fast each outage was acknowledged and restored.
    responses = await response_times(app, link, found) if staff else None
    told = await app[READS].incident_reports(("link", link.id), now - HISTORY, [link.id])

    # A link measured from several sites: its outages say which sites saw them.
    sites = [(s, directory.site_name(s)) for s in link.vantage.sites] if link.vantage else []
    home = config.site.id

    def assemble() -> dict[str, Any]:
        since = now - timedelta(days=DAYS)
        maintenance = [
            maintenance_view(w, contracts, config, now, tz)
            for w in concerning(planned, link)
            if w.ends_at > since
        ]
        upcoming = sorted((m for m in maintenance if m.state != "past"), key=lambda m: m.starts.iso)
        past = sorted((m for m in maintenance if m.state == "past"), key=lambda m: m.starts.iso,
                      reverse=True)  # fmt: skip
        spec = RANGES[range_name]
        return {
            "days": day_bar(days, bar_decimals(config, contracts, now)),
            "incidents": [
                incident_view(
                    i,
                    now,
                    tz,
                    sites,
                    home,
                    outage_note(i, link, contracts, config, planned, now, tz),
                )
                for i in reversed(found)
            ],
            "attributed": [
                [attribution_view(a, now, tz, policy) for a in of_incident(i, attributed)]
                for i in reversed(found)
            ],
            "responses": None if responses is None else list(reversed(responses)),
            "reported": causes_of(list(reversed(found)), told),
            "upcoming": upcoming,
            "past": past,
            "credits": [
                credit_view(
                    r,
                    now,
                    directory.customer_tz(link.customer),
                    config.availability_decimals(r.contract_id, r.window_start),
                )
                for r in ledger
            ],
            "charts": chart_views(link, data, traffic, tz, spec.label, staff=staff, phases=phases),
            "traffic_capped": staff
            and range_name not in TRAFFIC_RANGES
            and any(p.kind == "snmp" for p in link.probes),
            "phases_capped": http and range_name not in PHASE_RANGES,
            "ranges": list(RANGES),
            "range": range_name,
            "range_label": spec.label,
            "zone": now.astimezone(tz).strftime("%Z"),
        }

    # Drawing the charts is the costly part: off the event loop, so pages keep being
    # served while it is done.
    return await asyncio.to_thread(assemble)


async def attributions_of(
    app: web.Application, link: Link, found: Sequence[Incident], now: datetime
) -> list[Attribution]:
    """The attributions made on the link's outages in `found` (withdrawn ones too)."""
    if not found:
        return []
    start = min(i.starts_at for i in found)
    return await app[READS].attributions([link.id], start, now)


async def _attribution_desk(
    request: web.Request, viewer: Viewer, link: Link
) -> dict[str, Any] | None:
    """The NOC's forms to attribute the link's outages to the customer and to withdraw
    attributions: for those who may, built per request (the forms carry the session's
    CSRF token, which no cached part of the page may hold)."""
    if not can(viewer.user, "attribute"):
        return None
    app = request.app
    now = app[CLOCK]()
    tz = app[LIVE].directory.viewer_tz(viewer.user)
    found = await app[READS].recent_incidents(link.id, DAYS, now)
    attributed = await attributions_of(app, link, found, now)
    return {
        "outages": [
            (incident_view(i, now, tz), i.starts_at.isoformat(),
             [attribution_view(a, now, tz) for a in of_incident(i, attributed)])
            for i in reversed(found)
        ],
        "done": request.query.get("done"),
    }  # fmt: skip


def _audience(request: web.Request, viewer: Viewer) -> tuple[bool, str]:
    """What a page's content depends on besides the link: staff extras and the zone times
    are shown in. Everyone who may see the link and shares these sees the same page, so
    the views are cached under them (and never under who asked)."""
    tz = request.app[LIVE].directory.viewer_tz(viewer.user)
    return viewer.user.is_staff, str(tz)


async def _live_html(request: web.Request, viewer: Viewer, link: Link) -> Markup:
    """The refresh fragment, built once per cache period for its audience."""

    async def build() -> Markup:
        context = await _live(request, viewer, link)
        return await asyncio.to_thread(render_fragment, request.app, "_link.html", context)

    return await request.app[CACHE].get(("link-live", link.id, *_audience(request, viewer)), build)


@routes.get("/links/{link_id}")
async def link_page(request: web.Request) -> web.Response:
    viewer = require_viewer(request)
    link = visible_link(request, viewer)
    range_name = choice(request.query, "range", RANGES, DEFAULT_RANGE)
    audience = _audience(request, viewer)

    async def history() -> Markup:
        context = await _history(request, viewer, link, range_name)
        return await asyncio.to_thread(render_fragment, request.app, "_link_history.html", context)

    # Building the page (the SVG charts and long tables above all) costs more than
    # reading its data: it is built once per cache period for everyone it is the same
    # for, and only the frame around it (navigation, the viewer's name) per request.
    live_html, history_html, desk, told = await asyncio.gather(
        _live_html(request, viewer, link),
        request.app[CACHE].get(("link-history", link.id, range_name, *audience), history),
        _attribution_desk(request, viewer, link),
        link_incidents(request, viewer, link),
    )
    context = {
        "row": link,
        "live_html": live_html,
        "history_html": history_html,
        "attribution_desk": desk,
        "incident_reports": told,
    }
    return render(request, "link.html", context)


@routes.get("/partial/links/{link_id}")
async def link_partial(request: web.Request) -> web.Response:
    viewer = require_viewer(request, partial=True)
    link = visible_link(request, viewer)
    html = await _live_html(request, viewer, link)
    return web.Response(text=html, content_type="text/html", charset="utf-8")
