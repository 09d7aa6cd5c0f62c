"""Operations' page of the sites (/noc/sites): per vantage point, whether it sees now
(blind since when and why, or silent: no live agent), its last blind spans, its
canaries, its probe agents (heartbeat, lease, spool backlog, newest sample and its lag)
and how many links and measurements it takes.

The figures are `portal.site_views`' (one read through `PortalReads`); this module only
words them. Staff with the "noc" capability only: anyone else gets the 404 of a page
that does not exist. Times read in UTC, as everywhere for staff; an agent's ages are by
the database server's clock, which stamps its heartbeats and judges its lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from collector.agents import AgentSeen
from collector.site_record import BlindSpan
from kernel.formatting import byte_size, count_of
from portal.formatting import Moment, duration_text, local_time, moment
from portal.keys import CLOCK, LIVE, READS
from portal.pages.common import require
from portal.reads import BLIND_SPANS_BACK
from portal.rendering import render
from portal.site_views import SiteView, site_views

routes = web.RouteTableDef()

UTC = ZoneInfo("UTC")  # staff pages read in UTC

STATE_LABELS = {"sees": "Sees", "blind": "Blind", "silent": "No live agent"}


@dataclass(frozen=True, slots=True)
class SpanLine:
    started: Moment | None
    ended: Moment | None  # None: still open
    lasted: str
    reason: str


@dataclass(frozen=True, slots=True)
class AgentLine:
    id: str
    host: str
    state: str  # "live", "stopped ...", "lease ran out"
    live: bool
    heartbeat: str  # when, and how long ago
    spool: str
    queued: str
    canaries: str
    last_sample: str  # when, and its lag


def _ago(age: timedelta) -> str:
    return "just now" if age < timedelta(seconds=1) else f"{duration_text(age)} ago"


def _when(at: datetime) -> str:
    return local_time(at, UTC)


def agent_line(agent: AgentSeen) -> AgentLine:
    row = agent.row
    if row.stopped_at is not None:
        state = f"stopped {_when(row.stopped_at)}"
    else:
        state = "live" if row.live else "lease ran out"
    canaries = (
        f"blind since {_when(row.blind_since)}"
        if row.blind_since is not None
        else f"{row.canaries_failing} failing"
    )
    last = (
        "none yet"
        if row.last_sample_at is None
        else f"{_when(row.last_sample_at)} (lag {duration_text(agent.sample_lag or timedelta(0))})"
    )
    return AgentLine(
        id=row.id,
        host=f"{row.host} pid {row.pid}",
        state=state,
        live=row.live,
        heartbeat=f"{_when(row.heartbeat_at)} ({_ago(agent.heartbeat_age)})",
        spool=byte_size(row.spool_bytes),
        queued=count_of(row.queued, "sample"),
        canaries=canaries,
        last_sample=last,
    )


def span_line(span: BlindSpan, now: datetime) -> SpanLine:
    end = span.ends_at or now
    return SpanLine(
        started=moment(span.starts_at, now, UTC),
        ended=moment(span.ends_at, now, UTC),
        lasted=duration_text(max(end - span.starts_at, timedelta(0)), smallest="min"),
        reason=span.reason,
    )


def _site(view: SiteView, now: datetime) -> dict[str, object]:
    return {
        "view": view,
        "state": STATE_LABELS[view.state],
        "blind_since": None if view.blind is None else moment(view.blind.starts_at, now, UTC),
        "spans": [span_line(span, now) for span in view.blind_spans],
        "agents": [agent_line(agent) for agent in view.agents],
    }


@routes.get("/noc/sites")
async def sites_page(request: web.Request) -> web.Response:
    require(request, "noc")
    app = request.app
    now = app[CLOCK]()
    views = site_views(app[LIVE].config, await app[READS].sites(now))
    return render(
        request,
        "noc_sites.html",
        {
            "sites": [_site(view, now) for view in views],
            "updated": local_time(now, UTC),
            "span_days": BLIND_SPANS_BACK.days,
        },
    )
