"""Every endpoint of the API, in the order its OpenAPI document lists them, and the one
place where their routes are added to the app, with the cursors' key and the document.

A handler module declares its endpoints and routes nothing: only what `ENDPOINTS` lists
is routed and documented, so the router and the document cannot disagree.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from portal.api import (
    acknowledgements,
    attributions,
    compliance,
    contracts,
    credits,
    document,
    incidents,
    links,
    maintenance,
    maintenance_work,
    recurring,
    reports,
    series,
    sites,
    user,
)
from portal.api.endpoints import CURSORS, Endpoint
from portal.api.params import Cursors
from portal.keys import SETTINGS

ENDPOINTS: tuple[Endpoint, ...] = (
    user.me,
    links.list_links,
    links.get_link,
    links.link_incidents,
    attributions.list_attributions,
    attributions.attribute,
    attributions.withdraw,
    acknowledgements.acknowledge_outage,
    acknowledgements.list_acknowledgements,
    reports.link_availability,
    series.link_series,
    contracts.list_contracts,
    reports.sla_report,
    credits.list_credits,
    credits.get_credit,
    credits.approve_credit,
    credits.apply_credit,
    maintenance.list_maintenance,
    recurring.list_series,
    recurring.create,
    recurring.skip,
    recurring.cancel,
    maintenance_work.announce,
    maintenance_work.get_maintenance,
    maintenance_work.reschedule,
    maintenance_work.cancel,
    maintenance_work.maintenance_calendar,
    sites.list_sites,
    compliance.get_compliance,
    acknowledgements.operations_report,
    incidents.list_incident_reports,
    incidents.get_incident_report,
    incidents.open_incident_report,
    incidents.add_incident_report_outages,
    incidents.post_incident_report_update,
)


def add_routes(app: web.Application) -> None:
    app[CURSORS] = Cursors.for_settings(app[SETTINGS])
    app[document.DOCUMENT] = api_document()
    app.router.add_routes([document.route(), *(e.route() for e in ENDPOINTS)])


def api_document() -> dict[str, Any]:
    """The OpenAPI document of every endpoint, the document's own first."""
    return document.build([document.OPENAPI, *(e.operation for e in ENDPOINTS)])
