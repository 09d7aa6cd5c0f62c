"""The sites (/sites): for operations, each vantage point as /noc/sites shows it, from
`portal.site_views`: whether it sees now, its last blind spans, its canaries, its probe
agents and how much it measures.

For the roles with the "noc" capability (ops, admin) only: anyone else gets the 404 of a
path that does not exist, as on the pages. Agents' ages are by the database server's
clock, which stamps their heartbeats and judges their leases.
"""

from __future__ import annotations

from aiohttp import web

from collector.agents import AgentSeen
from collector.site_record import BlindSpan
from portal.api.endpoints import DATA, Body, endpoint
from portal.api.formats import iso
from portal.api.schemas import ref
from portal.auth import Account
from portal.keys import CLOCK, LIVE, READS
from portal.scope import can
from portal.site_views import SiteView, site_views


def _span(span: BlindSpan) -> Body:
    return {"starts_at": iso(span.starts_at), "ends_at": iso(span.ends_at), "reason": span.reason}


def _agent(agent: AgentSeen) -> Body:
    row = agent.row
    return {
        "id": row.id,
        "host": row.host,
        "pid": row.pid,
        "version": row.version,
        "live": row.live,
        "started_at": iso(row.started_at),
        "heartbeat_at": iso(row.heartbeat_at),
        "heartbeat_age_s": agent.heartbeat_age.total_seconds(),
        "stopped_at": iso(row.stopped_at),
        "spool_bytes": row.spool_bytes,
        "queued": row.queued,
        "blind_since": iso(row.blind_since),
        "canaries_failing": row.canaries_failing,
        "last_sample_at": iso(row.last_sample_at),
        "sample_lag_s": None if agent.sample_lag is None else agent.sample_lag.total_seconds(),
    }


def _site(view: SiteView) -> Body:
    blind = view.blind
    return {
        "id": view.id,
        "name": view.name,
        "home": view.home,
        "configured": view.configured,
        "state": view.state,
        "blind": None if blind is None else {"since": iso(blind.starts_at), "reason": blind.reason},
        "blind_spans": [_span(span) for span in view.blind_spans],
        "canaries": [{"id": c.id, "kind": c.kind} for c in view.canaries],
        "blind_when": view.blind_when,
        "agents": [_agent(agent) for agent in view.agents],
        "live_agents": view.live_agents,
        "links": view.links,
        "measurements": view.measurements,
    }


@endpoint(
    "GET",
    "/sites",
    "listSites",
    "The sites links are measured from, their agents and canaries",
    description="Every site, in one answer: this monitor's own first, then the "
    "configured agents' sites in config order, then any the database still names that "
    "the config no longer has. For ops and admin; other roles get 404.",
    response=ref("SiteList"),
    errors=(400, 404, *DATA),
)
async def list_sites(request: web.Request, user: Account) -> Body:
    if not can(user, "noc"):
        raise web.HTTPNotFound()
    app = request.app
    readings = await app[READS].sites(app[CLOCK]())
    return {"items": [_site(view) for view in site_views(app[LIVE].config, readings)]}
