"""The link board's page (every visible link, worst first) and its refresh fragment.

What a row shows and how the board is filtered and paged is `portal.board`'s; this
module only chooses the page and renders it.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from markupsafe import Markup

from portal.auth import Viewer
from portal.board import STATUS_ORDER, board_page, board_query, full_board
from portal.compliance_views import NO_WINDOWS, compliance_of
from portal.keys import CACHE, LIVE, SETTINGS
from portal.maintenance_desk import planned_for_customer
from portal.pages.common import positive_int, redirect, require_viewer
from portal.pages.incidents import home_incidents
from portal.pages.overview import overview_rows, overview_summary
from portal.rendering import render, render_fragment
from portal.scope import can
from sla.compliance import summary

routes = web.RouteTableDef()


async def board_html(request: web.Request, viewer: Viewer, *, partial: bool) -> Markup:
    """The link board's content (`partial`: its refreshing part), the same for everyone of
    the viewer's scope: built once per cache period for each filter and page."""
    user = viewer.user
    filters = board_query(request, viewer)
    page = positive_int(request.query, "page", 1, most=10_000)
    scope = "*" if can(user, "all_customers") else f"customer:{user.customer}"
    template = "_links.html" if partial else "_links_page.html"

    async def build() -> Markup:
        board = await full_board(request, viewer)
        directory = request.app[LIVE].directory
        customer = directory.customer_name(filters.customer) if filters.customer else None
        listing = board_page(board, filters, page, customer, path="/links")
        context = {
            "board": listing.board,
            "listing": listing,
            "filters": filters,
            "customers": directory.visible_customers(user),
            "statuses": STATUS_ORDER,
            "refresh_seconds": int(request.app[SETTINGS].refresh.total_seconds()),
            "overview": await overview_rows(request, viewer, listing.board.rows),
        }
        return await asyncio.to_thread(render_fragment, request.app, template, context)

    key = ("links-html", scope, template, filters.customer, filters.status, page)
    return await request.app[CACHE].get(key, build)


# --- handlers --------------------------------------------------------------------------


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    """Each role starts where its work is."""
    viewer = require_viewer(request)
    if can(viewer.user, "noc"):
        return redirect("/noc")
    if can(viewer.user, "ledger"):
        return redirect("/billing")
    return redirect("/links")


@routes.get("/links")
async def links_page(request: web.Request) -> web.Response:
    viewer = require_viewer(request)
    page_html = await board_html(request, viewer, partial=False)
    return render(
        request,
        "links.html",
        {
            "page_html": page_html,
            "compliance": await customer_compliance(request, viewer),
            "summary": await overview_summary(request, viewer),
            "incident_reports": await home_incidents(request, viewer),
            "planned": await planned_for_customer(request, viewer.user),
        },
    )


async def customer_compliance(request: web.Request, viewer: Viewer) -> list[str] | None:
    """A customer's own compliance, "99 of 104 weeks met in the last 52 weeks" (and
    months); None for staff, whose figures are on /noc/compliance."""
    user = viewer.user
    if can(user, "all_customers") or user.role != "customer" or user.customer is None:
        return None
    scope = (await compliance_of(request, user.customer)).customer(user.customer)
    return summary(scope) if scope is not None else [NO_WINDOWS]


@routes.get("/partial/links")
async def links_partial(request: web.Request) -> web.Response:
    viewer = require_viewer(request, partial=True)
    html = await board_html(request, viewer, partial=True)
    return web.Response(text=html, content_type="text/html", charset="utf-8")
