"""Who may see what a request names, asked of `portal.scope` before anything is read: a
link or a customer outside the caller's scope is the same 404 as one that does not
exist, never a view of another customer's data.

Reads nothing but the live config's directory.
"""

from __future__ import annotations

from aiohttp import web

from kernel.config import Link
from portal.api.params import ident
from portal.auth import Account
from portal.keys import LIVE
from portal.scope import can


def visible_link(request: web.Request, user: Account) -> Link:
    link = request.app[LIVE].directory.visible_link(user, request.match_info["link_id"])
    if link is None:
        raise web.HTTPNotFound()
    return link


def customer_filter(request: web.Request, user: Account) -> str | None:
    """The `customer` asked for, if the caller may see it; otherwise the same 404 as an
    unknown customer, never a view of another customer's data."""
    customer = ident(request, "customer")
    if (
        customer is not None
        and request.app[LIVE].directory.visible_customer(user, customer) is None
    ):
        raise web.HTTPNotFound()
    return customer


def customer_scope(request: web.Request, user: Account) -> frozenset[str] | None:
    """The customers whose data a query covers: None for every customer (staff without a
    filter), else the set (empty for a role that sees nothing)."""
    customer = customer_filter(request, user)
    if customer is not None:
        return frozenset({customer})
    if can(user, "all_customers"):
        return None
    if user.role == "customer" and user.customer is not None:
        return frozenset({user.customer})
    return frozenset()
