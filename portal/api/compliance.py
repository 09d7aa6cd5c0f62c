"""The compliance rate (/compliance): the share of contract windows met per period, with
the trend, per customer, per plan and overall.

A customer sees only their own scope (computed from their own ledger rows); staff see
every scope, or the one customer or plan they name. A customer or plan the caller may
not see answers the 404 of one that does not exist. Figures are
`portal.compliance_views`', read through `PortalReads`.
"""

from __future__ import annotations

from aiohttp import web

from portal.api.access import customer_filter
from portal.api.endpoints import CUSTOMER, DATA, ID, Body, endpoint
from portal.api.formats import iso
from portal.api.openapi import Param
from portal.api.params import ident
from portal.api.schemas import ref
from portal.auth import Account
from portal.compliance_views import ANY_PLAN, compliance_of, scope_body
from portal.keys import CLOCK, LIVE
from portal.scope import can
from sla.compliance import Scope

NO_PLAN = "none"
PLAN = Param(
    "plan",
    ID,
    f"Only this plan's contracts (`{NO_PLAN}`: contracts without a plan); with `customer`, "
    "that customer's contracts of the plan. For staff: with a customer's token, or for a "
    "plan that is not configured, the answer is 404.",
)


@endpoint(
    "GET",
    "/compliance",
    "getCompliance",
    "The share of contract windows met, per period, with the trend",
    description="The share of contract windows met over the last 4, 12 and 52 weeks and "
    "3 and 12 months (windows of each contract's own kind, ended in its own zone), from "
    "the ledger's window rows: each link's window counts once; running windows and "
    "windows with no availability (n/a) are not counted. Each rate has the same share "
    "over the period before and the difference in points. Staff get the overall scope, "
    "each plan's and each customer's (or the one customer or plan named); a customer "
    "gets their own scope only.",
    response=ref("Compliance"),
    params=(CUSTOMER, PLAN),
    errors=(400, 404, *DATA),
)
async def get_compliance(request: web.Request, user: Account) -> Body:
    customer = customer_filter(request, user)
    plan = ident(request, "plan")
    now = request.app[CLOCK]()
    directory = request.app[LIVE].directory
    if not can(user, "all_customers"):
        if plan is not None or user.role != "customer" or user.customer is None:
            raise web.HTTPNotFound()
        customer = user.customer
    wanted = ANY_PLAN if plan is None else None if plan == NO_PLAN else plan
    if plan is not None and not _plan_known(request, wanted):
        raise web.HTTPNotFound()
    result = await compliance_of(request, customer, wanted)
    if customer is not None:
        # A customer with no contract and no window yet: their scope, with no rates.
        scope = result.customer(customer) or Scope("customer", customer, ())
        items = [scope_body(scope, directory.customer_name(customer))]
    elif plan is not None:
        items = [scope_body(result.plan(wanted) or Scope("plan", wanted, ()))]
    else:
        items = [
            scope_body(result.overall),
            *(scope_body(s) for s in result.plans),
            *(scope_body(s, directory.customer_name(s.id or "")) for s in result.customers),
        ]
    return {"as_of": iso(now), "items": items}


def _plan_known(request: web.Request, plan: str | None) -> bool:
    """A configured plan, or "none" (contracts without one, which always may exist)."""
    config = request.app[LIVE].config
    return plan is None or any(p.id == plan for p in config.plans)
