"""What a customer's home page adds to the link board: each link's week and month
against its contract, its 90-day bar and credits owed, and the summary above the list
(see `portal.home_views`).

Every read is batched over the customer's links: two SLA reads (the running week and
month of every contract), one read of the ledger's owed rows, one of the shown links'
intervals and the shared maintenance list, however many links there are; per link
there is only computation. Staff get None: their overview is the NOC's. Nothing here
writes, and nothing reads another customer's links, windows or ledger rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from kernel.config import Contract
from portal.auth import Viewer
from portal.board import LinkRow, full_board
from portal.home_views import OWED, LinkOverview, Summary, link_overview, owed_rows, summary
from portal.keys import CLOCK, LIVE, READS
from portal.link_charts import DAYS, DayFigures, day_figures, local_midnight
from portal.maintenance_views import strictest_notice
from portal.scope import can
from sla.compute import decide_maintenance
from sla.ledger import LedgerRow
from sla.report import ContractWindow, concerns


@dataclass(frozen=True, slots=True)
class Figures:
    """The customer's figures both parts of the page use, read once per request."""

    customer: str
    contracts: list[Contract]
    weekly: list[ContractWindow]
    monthly: list[ContractWindow]
    owed: list[LedgerRow]
    now: datetime


# The request's own figures: both parts of the page use them, read once per request.
_MEMO = web.RequestKey("home_figures", Figures)


def _customer_of(viewer: Viewer) -> str | None:
    user = viewer.user
    if can(user, "all_customers") or user.role != "customer":
        return None
    return user.customer


async def _figures(request: web.Request, customer: str) -> Figures:
    memo: Figures | None = request.get(_MEMO)
    if memo is not None and memo.customer == customer:
        return memo
    app = request.app
    now = app[CLOCK]()
    contracts = [c for c in app[LIVE].config.contracts if c.customer == customer]
    reads = app[READS]
    weekly, monthly, rows = await asyncio.gather(
        reads.windows(contracts, "week", now),
        reads.windows(contracts, "month", now),
        reads.ledger_rows(customer=customer, status=OWED),
    )
    figures = Figures(customer, contracts, weekly, monthly, owed_rows(rows), now)
    request[_MEMO] = figures
    return figures


async def overview_rows(
    request: web.Request, viewer: Viewer, rows: Sequence[LinkRow]
) -> list[LinkOverview] | None:
    """The overview of the board's rows shown (one page of them), in their order; None
    for staff."""
    customer = _customer_of(viewer)
    if customer is None:
        return None
    app = request.app
    directory = app[LIVE].directory
    config = app[LIVE].config
    figures = await _figures(request, customer)
    now = figures.now
    tz = directory.customer_tz(customer)
    first = now.astimezone(tz).date() - timedelta(days=DAYS - 1)
    start = local_midnight(first, tz)
    ids = [row.id for row in rows]
    intervals, planned = await asyncio.gather(
        app[READS].intervals_of(ids, start, now), app[READS].maintenance_around(now)
    )
    viewer_tz = directory.viewer_tz(viewer.user)

    def build() -> list[LinkOverview]:
        out = []
        for row in rows:
            contracts = [c for c in figures.contracts if row.id in c.links]
            notice = strictest_notice(contracts, config, now)
            mine = [w for w in planned if concerns(w, row.id, row.customer_id)]
            excluded = [
                (d.window.starts_at, d.window.covers_until)
                for d in decide_maintenance(mine, notice)
                if d.excluded
            ]
            days: list[DayFigures] = day_figures(intervals.get(row.id, []), excluded, tz, now)
            out.append(
                link_overview(
                    row, contracts, figures.weekly, figures.monthly, days, figures.owed,
                    now, viewer_tz,
                )
            )  # fmt: skip
        return out

    # A hundred links' day figures are CPU work: off the event loop.
    return await asyncio.to_thread(build) if len(rows) > 10 else build()


async def overview_summary(request: web.Request, viewer: Viewer) -> Summary | None:
    """The summary above the list, of every link of the customer; None for staff."""
    customer = _customer_of(viewer)
    if customer is None or not request.app[LIVE].directory.visible_links(viewer.user):
        return None
    board = await full_board(request, viewer)
    figures = await _figures(request, customer)
    return summary(board.rows, board.counts, figures.monthly, figures.owed)
