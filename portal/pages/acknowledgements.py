"""Acknowledging an outage from the NOC, and the monthly operations report.

An outage card on /noc (and each outage on a link page, for staff) leads to the outage's
acknowledgement form (/links/{link_id}/outages/{start}/ack): the outage, who
acknowledged it if someone did, else a note and the button. The form is built per
request, since it carries the session's CSRF token and the dashboard is one cached page
for every NOC screen (refreshed in place, which would also wipe a half-typed note).
A second acknowledgement is refused with who made the first. Only roles with the
"acknowledge" capability reach the form; /noc/operations is for the "noc" capability.
For anyone else both are the 404 of a page that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from aiohttp import web

from collector.acknowledgements import AcknowledgementError, acknowledge, outage_key
from collector.state_reads import Incident
from kernel.config import Link
from kernel.domain import LinkStatus
from portal.acknowledgement_views import (
    acknowledged_text,
    figure_text,
    objective_text,
    tta_text,
    ttr_text,
)
from portal.board import LinkRow
from portal.formatting import moment
from portal.keys import CACHE, CLOCK, DATABASE, LIVE, READS
from portal.middleware import PortalError, read_form
from portal.pages.common import (
    month_label,
    redirect,
    require,
    safe_next,
    timestamp,
    visible_link,
)
from portal.rendering import render
from sla.operations import UTC_ZONE, month_window
from sla.windows import window_containing

routes = web.RouteTableDef()

_US = timedelta(microseconds=1)


def _start(request: web.Request) -> datetime:
    """The outage's start from the path; a path that names no time names no page."""
    try:
        start = timestamp(request.match_info["start"], "start")
    except web.HTTPException:  # PortalError too: a bad time is a page that does not exist
        raise web.HTTPNotFound() from None
    if start is None:
        raise web.HTTPNotFound()
    return start


class _Card(Protocol):
    """An outage card of the NOC (`portal.pages.noc.Outage`)."""

    @property
    def row(self) -> LinkRow: ...


C = TypeVar("C", bound=_Card)


async def with_acknowledgements(app: web.Application, cards: list[C]) -> list[C]:
    """The NOC's outage cards, each down link's with its outage's acknowledgement (or
    the key of its form). One read for every card."""
    down = [c for c in cards if c.row.status is LinkStatus.DOWN and c.row.since_at is not None]
    if not down:
        return cards
    starts = [c.row.since_at for c in down if c.row.since_at is not None]
    acks = await app[READS].acknowledgements(
        sorted({c.row.id for c in down}), min(starts), max(starts) + _US
    )
    by_key = {(a.link_id, a.outage_start): a for a in acks}
    out = []
    for card in cards:
        since = card.row.since_at
        if card.row.status is LinkStatus.DOWN and since is not None:
            found = by_key.get((card.row.id, since))
            card = replace(  # type: ignore[type-var]
                card,
                ack_key=outage_key(since),
                acknowledged=None if found is None else acknowledged_text(found),
            )
        out.append(card)
    return out


async def response_times(
    app: web.Application, link: Link, found: Sequence[Incident]
) -> list[tuple[str, str, str]]:
    """Per outage in `found`: its time to acknowledge, to restore, and its form's key."""
    if not found:
        return []
    starts = [i.starts_at for i in found]
    acks = await app[READS].acknowledgements([link.id], min(starts), max(starts) + _US)
    by_start = {a.outage_start: a for a in acks}
    return [
        (tta_text(by_start.get(i.starts_at), i.running), ttr_text(i), outage_key(i.starts_at))
        for i in found
    ]


@routes.get("/links/{link_id}/outages/{start}/ack")
async def ack_form(request: web.Request) -> web.Response:
    viewer = require(request, "acknowledge")
    link = visible_link(request, viewer)
    start = _start(request)
    app = request.app
    now = app[CLOCK]()
    found = [
        i for i in await app[READS].incidents(link.id, start, start + _US) if i.starts_at == start
    ]
    if not found:
        raise PortalError(404, f"{link.id} has no outage that began at {outage_key(start)}")
    outage = found[0]
    acks = await app[READS].acknowledgements([link.id], start, start + _US)
    return render(
        request,
        "noc_ack.html",
        {
            "row": link,
            "outage": outage,
            "key": outage_key(outage.starts_at),
            "started": moment(outage.starts_at, now, UTC_ZONE),
            "ended": moment(outage.ends_at, now, UTC_ZONE),
            "acknowledged": acknowledged_text(acks[0]) if acks else None,
            "next": safe_next(request.query.get("next") or "/noc"),
        },
    )


@routes.post("/links/{link_id}/outages/{start}/ack")
async def ack(request: web.Request) -> web.Response:
    viewer = require(request, "acknowledge")
    link = visible_link(request, viewer)
    start = _start(request)
    form = await read_form(request)
    app = request.app
    try:
        await acknowledge(
            app[DATABASE],
            link.id,
            start,
            by=viewer.user.name,
            at=app[CLOCK](),
            note=form.get("note", ""),
            customer_id=link.customer,
        )
    except AcknowledgementError as exc:
        raise PortalError(exc.status, str(exc)) from None
    app[CACHE].clear()  # every NOC screen and the link page show it at their next look
    return redirect(safe_next(form.get("next") or "/noc"))


@routes.get("/noc/operations")
async def operations_page(request: web.Request) -> web.Response:
    """Per month: how fast outages were acknowledged and restored, per contract."""
    require(request, "noc")
    app = request.app
    now = app[CLOCK]()
    label = (
        month_label(request.query.get("month")) or window_containing("month", UTC_ZONE, now).label
    )
    month = month_window(label)
    found = await app[READS].operations_report(app[LIVE].config, label, now)
    names = {c.id: c.name for c in app[LIVE].config.customers}
    return render(
        request,
        "noc_operations.html",
        {
            "report": found,
            "label": label,
            "previous": month.previous().label,
            "following": month.next().label if month.end <= now else None,
            "figure": figure_text,
            "objective": objective_text,
            "names": names,
            "key": outage_key,
        },
    )
