"""The link board as a view: each visible link's row (worst first), its counts, and the
pages of it that /links and /noc show.

Customers see their own links; staff see every link and can filter by customer and
state. A link inside an active maintenance window shows blue ("maintenance") whatever it
measures, with what it measures alongside, because that is the state the customer was
told to expect. Shared by the board, the NOC and the link page; nothing here reads the
database but through `portal.reads`, or renders a page.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

from aiohttp import web

from kernel.config import RESPONSE_TIME_KINDS, Link
from kernel.config.sites import base_probe_id
from kernel.domain import LinkState, LinkStatus, MaintenanceWindow, ProbeState
from portal.auth import Viewer
from portal.formatting import Moment, milliseconds, moment, percent
from portal.keys import CACHE, CLOCK, LIVE, NOTICES, READS
from portal.params import choice
from portal.scope import Directory, can

STATUS_ORDER = sorted(LinkStatus, key=lambda status: -status.severity)
BOARD_PAGE = 100  # rows per board page: 10,000 links are 100 pages, not one 5 MB page
STATUS_FILTERS = {"all": None, **{status.value: status for status in LinkStatus}}


# --- view models ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeRow:
    id: str
    kind: str
    status: LinkStatus
    since: Moment | None
    last_observed: Moment | None
    rtt: str
    loss: str
    error: str | None
    response: bool = False  # `rtt` is a response time (HTTP), not a network round trip
    site: str = ""  # where it is measured from, for a link measured from several sites


@dataclass(frozen=True, slots=True)
class LinkRow:
    id: str
    description: str
    customer_id: str
    customer_name: str
    status: LinkStatus  # what people see: maintenance overrides what is measured
    measured: LinkStatus  # what the probes say
    since: Moment | None
    rtt: str
    loss: str
    probes: tuple[ProbeRow, ...]
    maintenance: str | None  # the active window's description, when in maintenance
    # For a link measured from several sites: "Measured from 3 locations (...); ..."
    vantage: str | None = None
    # When the measured status began, as read with the row, for figures that count from
    # it at another moment (the NOC's running durations); `since` is relative to the read.
    since_at: datetime | None = None
    since_exact: bool = True


@dataclass(frozen=True, slots=True)
class Board:
    rows: list[LinkRow]  # worst first, then by id
    counts: list[tuple[LinkStatus, int]]  # worst first, statuses present only
    updated: str  # when the states were read, in the viewer's time zone
    notices: tuple[str, ...] = ()  # operational warnings, for staff only
    total: int = 0  # links in the viewer's scope before filters
    show_customer: bool = False  # staff boards name each link's customer
    # The moment the states were read (UTC): a page built from the board later counts
    # its durations to this moment, so that one "Updated" time holds for all it shows.
    read_at: datetime | None = None


def probe_row(probe: ProbeState, now: datetime, tz: tzinfo, site: str = "") -> ProbeRow:
    return ProbeRow(
        id=base_probe_id(probe.probe_id) if site else probe.probe_id,
        site=site,
        kind=probe.kind,
        status=probe.status,
        since=moment(probe.since, now, tz, exact=probe.since_exact),
        last_observed=moment(probe.last_observed_at, now, tz),
        rtt=milliseconds(probe.rtt_ms),
        loss=percent(probe.loss_pct),
        error=probe.error,
        response=probe.kind in RESPONSE_TIME_KINDS,
    )


def _vantage(directory: Directory, link: Link) -> str | None:
    """What the link's page says of where it is measured from, when its config names the
    sites: for customers and staff alike, by the sites' names."""
    if link.vantage is None:
        return None
    names = [directory.site_name(site) for site in link.vantage.sites]
    if len(names) == 1:
        return f"Measured from {names[0]}."
    return (
        f"Measured from {len(names)} locations ({', '.join(names)}); down only while at "
        f"least {link.vantage.quorum} of them see it down."
    )


def covering(
    windows: Sequence[MaintenanceWindow], link: Link, now: datetime
) -> MaintenanceWindow | None:
    """The maintenance window in progress for `link` at `now`, if any."""
    for window in windows:
        if not window.starts_at <= now < window.covers_until:
            continue
        concerned = (
            (not window.link_ids and not window.customer_ids)
            or link.id in window.link_ids
            or link.customer in window.customer_ids
        )
        if concerned:
            return window
    return None


def link_row(
    directory: Directory,
    link: Link,
    state: LinkState | None,
    active: Sequence[MaintenanceWindow],
    now: datetime,
    tz: tzinfo,
) -> LinkRow:
    probes = state.probes if state is not None else ()
    # The link's own figures are its first probe that measured the network (config
    # order): an HTTP probe's rtt is a response time, shown in its own row only.
    network = [p for p in probes if p.kind not in RESPONSE_TIME_KINDS]
    measured = next((p for p in network if p.rtt_ms is not None or p.loss_pct is not None), None)
    status = state.status if state is not None else LinkStatus.UNKNOWN
    window = covering(active, link, now)
    sites = {
        p.id: directory.site_name(p.measured_from)
        for p in link.probes
        if link.vantage is not None and p.measured_from is not None
    }
    return LinkRow(
        id=link.id,
        description=link.description,
        customer_id=link.customer,
        customer_name=directory.customer_name(link.customer),
        status=LinkStatus.MAINTENANCE if window is not None else status,
        measured=status,
        since=moment(
            state.since if state is not None else None,
            now,
            tz,
            exact=state.since_exact if state is not None else True,
        ),
        rtt=milliseconds(measured.rtt_ms if measured else None),
        loss=percent(measured.loss_pct if measured else None),
        probes=tuple(probe_row(p, now, tz, sites.get(p.probe_id, "")) for p in probes),
        vantage=_vantage(directory, link),
        maintenance=(window.description or window.id) if window is not None else None,
        since_at=state.since if state is not None else None,
        since_exact=state.since_exact if state is not None else True,
    )


async def load_board(
    request: web.Request,
    viewer: Viewer,
    links: Sequence[Link],
    *,
    scope: str,
    status_filter: LinkStatus | None = None,
) -> Board:
    app = request.app
    directory = app[LIVE].directory
    now = app[CLOCK]()
    tz = directory.viewer_tz(viewer.user)
    reads = app[READS]
    states = await reads.link_states(links, scope, now)
    active = await reads.active_maintenance(now)

    def build_rows() -> list[LinkRow]:
        rows = [link_row(directory, link, states.get(link.id), active, now, tz) for link in links]
        rows.sort(key=lambda row: (-row.status.severity, row.id))
        return rows

    # Thousands of rows are CPU work: in a thread, when there are enough to matter.
    rows = await asyncio.to_thread(build_rows) if len(links) > 100 else build_rows()
    counts = Counter(row.status for row in rows)
    if status_filter is not None:
        rows = [row for row in rows if row.status is status_filter]
    return Board(
        rows=rows,
        counts=[(status, counts[status]) for status in STATUS_ORDER if counts[status]],
        updated=now.astimezone(tz).strftime("%H:%M:%S %Z"),
        notices=tuple(app[NOTICES]()) if viewer.user.is_staff else (),
        total=len(links),
        show_customer=viewer.user.is_staff,
        read_at=now,
    )


@dataclass(frozen=True, slots=True)
class BoardQuery:
    """The board's filters, as given in the query string (staff only)."""

    customer: str | None
    status: str

    def query_string(self) -> str:
        parts = []
        if self.customer:
            parts.append(f"customer={self.customer}")
        if self.status != "all":
            parts.append(f"status={self.status}")
        return "?" + "&".join(parts) if parts else ""


def board_query(request: web.Request, viewer: Viewer) -> BoardQuery:
    status = choice(request.query, "status", STATUS_FILTERS, "all")
    customer = request.query.get("customer") or None
    # A customer may only filter to themselves; anyone else is as absent as an unknown
    # customer, never a view of another customer's links.
    if (
        customer is not None
        and request.app[LIVE].directory.visible_customer(viewer.user, customer) is None
    ):
        raise web.HTTPNotFound()
    return BoardQuery(customer, status)


async def full_board(request: web.Request, viewer: Viewer) -> Board:
    """Every row of the viewer's scope, worst first, built once per cache period for
    everyone who shares the scope (staff: every link, in UTC; a customer: theirs)."""
    user = viewer.user
    scope = "*" if can(user, "all_customers") else f"customer:{user.customer}"

    async def load() -> Board:
        links = request.app[LIVE].directory.visible_links(user)
        return await load_board(request, viewer, links, scope=scope)

    ttl = request.app[READS].board_ttl(scope)
    return await request.app[CACHE].get(("board", scope), load, ttl_s=ttl)


@dataclass(frozen=True, slots=True)
class BoardPage:
    """One page of a board: its rows, with the counts and total of the chosen customer's
    links (or all of them) for the summary."""

    board: Board
    customer: str | None  # the chosen customer's name
    first: int  # 1-based index of the first row shown
    last: int
    matching: int  # rows passing the filters, on every page
    page: int
    pages: int
    path: str  # the board's own page: /links or /noc

    def link(self, filters: BoardQuery, page: int) -> str:
        query = filters.query_string()
        joiner = "&" if query else "?"
        return f"{self.path}{query}{joiner}page={page}" if page > 1 else f"{self.path}{query}"


def board_page(
    board: Board, filters: BoardQuery, page: int, customer: str | None, *, path: str
) -> BoardPage:
    mine = [r for r in board.rows if filters.customer is None or r.customer_id == filters.customer]
    counts = Counter(row.status for row in mine)
    rows = [r for r in mine if filters.status == "all" or r.status.value == filters.status]
    pages = max(1, math.ceil(len(rows) / BOARD_PAGE))
    page = min(page, pages)
    shown = rows[(page - 1) * BOARD_PAGE : page * BOARD_PAGE]
    return BoardPage(
        board=replace(
            board,
            rows=shown,
            counts=[(status, counts[status]) for status in STATUS_ORDER if counts[status]],
            total=len(mine),
        ),
        customer=customer,
        first=(page - 1) * BOARD_PAGE + 1 if shown else 0,
        last=(page - 1) * BOARD_PAGE + len(shown),
        matching=len(rows),
        page=page,
        pages=pages,
        path=path,
    )
