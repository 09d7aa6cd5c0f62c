"""Links (/links, /links/{link_id}): their current status and their probes', and their
outages (/links/{link_id}/incidents).

A caller gets only the links `portal.scope` shows them, in id order; any other answers
404, as one that does not exist. States and outages are read through `PortalReads`,
under the pages' cache, so a status here is the one the board shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from aiohttp import web

from collector.state_reads import Incident
from kernel.config import Link
from kernel.config.sites import base_probe_id
from kernel.domain import LinkState, LinkStatus, MaintenanceWindow, ProbeState
from portal.api.access import customer_filter, visible_link
from portal.api.endpoints import (
    CURSORS,
    CUSTOMER,
    DATA,
    FROM,
    LINK_ID,
    OPERATION,
    PAGING,
    TO,
    Body,
    endpoint,
    page,
)
from portal.api.formats import MICROSECOND, finite, iso, micros
from portal.api.openapi import Param
from portal.api.params import one_of, paginate, time_range
from portal.api.schemas import ref
from portal.auth import Account
from portal.board import covering
from portal.keys import CLOCK, LIVE, READS
from portal.scope import can
from sla.compute import seconds

INCIDENT_HISTORY = timedelta(days=30)
STATUS_VALUES = tuple(status.value for status in LinkStatus)
LINK_STATUS = Param(
    "status",
    {"type": "string", "enum": list(STATUS_VALUES)},
    "Only links in this status (as shown: maintenance overrides what is measured).",
)


def _probe(link: Link, state: ProbeState, home: str) -> Body:
    spec = next((p for p in link.probes if p.id == state.probe_id), None)
    return {
        "id": state.probe_id,
        "probe": base_probe_id(state.probe_id),
        "site": (spec.measured_from if spec is not None else None) or home,
        "kind": state.kind,
        "availability": spec.availability if spec is not None else True,
        "status": state.status.value,
        "since": iso(state.since),
        "since_exact": state.since_exact,
        "last_observed_at": iso(state.last_observed_at),
        "rtt_ms": finite(state.rtt_ms),
        "loss_pct": finite(state.loss_pct),
        "error": state.error,
    }


def _link(
    request: web.Request,
    link: Link,
    state: LinkState | None,
    active: Sequence[MaintenanceWindow],
    now: datetime,
) -> Body:
    measured = state.status if state is not None else LinkStatus.UNKNOWN
    window = covering(active, link, now)
    return {
        "id": link.id,
        "customer": link.customer,
        "customer_name": request.app[LIVE].directory.customer_name(link.customer),
        "description": link.description,
        "status": (LinkStatus.MAINTENANCE if window is not None else measured).value,
        "measured_status": measured.value,
        "since": iso(state.since) if state is not None else None,
        "since_exact": state.since_exact if state is not None else True,
        "maintenance": None
        if window is None
        else {"id": window.id, "description": window.description},
    }


async def _states(
    request: web.Request, links: Sequence[Link], scope: str, now: datetime
) -> tuple[dict[str, LinkState], list[MaintenanceWindow]]:
    """Current states under the pages' cache: `scope` names the set of links (the same
    name for the same set, whoever asks)."""
    reads = request.app[READS]
    return await reads.link_states(links, scope, now), await reads.active_maintenance(now)


@endpoint(
    "GET",
    "/links",
    "listLinks",
    "Links and their current status",
    description="The caller's links in id order, with their status as the board shows it.",
    response=ref("LinkPage"),
    params=(CUSTOMER, LINK_STATUS, *PAGING),
    errors=(400, 404, *DATA),
)
async def list_links(request: web.Request, user: Account) -> Body:
    customer = customer_filter(request, user)
    status = one_of(request, "status", STATUS_VALUES)
    links = sorted(
        request.app[LIVE].directory.visible_links(user, customer_id=customer), key=lambda x: x.id
    )
    now = request.app[CLOCK]()
    if status is None:
        # Only the page's links need their state read.
        chosen, cursor = paginate(
            request, request[OPERATION], request.app[CURSORS], links, lambda x: (x.id,)
        )
        states, active = await _states(
            request, chosen, "api:" + ",".join(x.id for x in chosen), now
        )
        rows = [_link(request, x, states.get(x.id), active, now) for x in chosen]
        return {"items": rows, "next_cursor": cursor}
    if customer is None and can(user, "all_customers"):
        scope = "*"  # the board's own name for every link
    else:
        scope = f"customer:{customer or user.customer}"
    states, active = await _states(request, links, scope, now)
    rows = [_link(request, x, states.get(x.id), active, now) for x in links]
    shown = [row for row in rows if row["status"] == status]
    return page(request, shown, lambda row: (row["id"],), lambda row: row)


@endpoint(
    "GET",
    "/links/{link_id}",
    "getLink",
    "One link, its current status and its probes'",
    response=ref("LinkDetail"),
    params=(LINK_ID,),
    errors=(404, *DATA),
)
async def get_link(request: web.Request, user: Account) -> Body:
    link = visible_link(request, user)
    now = request.app[CLOCK]()
    states, active = await _states(request, [link], f"link:{link.id}", now)
    state = states.get(link.id)
    home = request.app[LIVE].config.site.id
    return {
        **_link(request, link, state, active, now),
        "probes": [_probe(link, p, home) for p in state.probes] if state is not None else [],
        "vantage": None
        if link.vantage is None
        else {"sites": list(link.vantage.sites), "quorum": link.vantage.quorum},
        "contracts": [c.id for c in request.app[LIVE].directory.contracts_of_link(link.id)],
    }


def _incident(incident: Incident) -> Body:
    duration = incident.duration
    return {
        "link": incident.link_id,
        "starts_at": iso(incident.starts_at),
        "ends_at": iso(incident.ends_at),
        "running": incident.running,
        "duration_s": None if duration is None else seconds(duration // MICROSECOND),
        "seen_until": iso(incident.seen_until),
        "probes": [
            {"probe": p.probe_id, "starts_at": iso(p.starts_at), "error": p.error}
            for p in incident.probes
        ],
    }


@endpoint(
    "GET",
    "/links/{link_id}/incidents",
    "listLinkIncidents",
    "The link's outages, newest first",
    description="Outages overlapping [from, to), newest first, each with its real start. "
    "`to` defaults to now and `from` to 30 days before `to`; any span may be asked for, "
    "a page at a time.",
    response=ref("IncidentPage"),
    params=(LINK_ID, FROM, TO, *PAGING),
    errors=(400, 404, *DATA),
)
async def link_incidents(request: web.Request, user: Account) -> Body:
    link = visible_link(request, user)
    now = request.app[CLOCK]()
    start, end = time_range(request, now, before=INCIDENT_HISTORY)
    found: list[Incident] = []
    if start < end:  # a reversed range would still meet an outage spanning both ends
        found = list(await request.app[READS].incidents(link.id, start, end))
    found.sort(key=lambda i: i.starts_at, reverse=True)
    return page(request, found, lambda i: (micros(i.starts_at),), _incident, descending=True)
