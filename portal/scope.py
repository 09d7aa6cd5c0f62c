"""Who may see and do what: the portal's one place for authorisation.

Every page and API call asks here first and reads only what comes back: a customer's
view is narrowed to their customer before anything is read from the database, so no
other customer's data ever reaches a template, a JSON body or a cache key. Objects outside
a viewer's scope are reported exactly like objects that do not exist (the callers answer
404 for both), so nobody learns what other customers have. An unknown role sees nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, tzinfo
from typing import Literal

from kernel.config import Config, Contract, Customer, Link
from portal.auth import Account

Capability = Literal[
    "all_customers",  # see every customer's links, reports and credits
    "noc",  # the operations dashboard and compliance overview
    "ledger",  # the billing desk: the ledger, its audit trail and exports
    "settle",  # approve, apply and adjust credits
    "compliance",  # the compliance rate of every customer, plan and contract
    "attribute",  # attribute outage time to the customer, and withdraw that
    "maintenance",  # announce, reschedule, skip and cancel maintenance (series too)
    "acknowledge",  # acknowledge an outage (and read who acknowledged which)
    "incidents",  # group outages into incidents and post the updates customers read
]

# Operations run the network and plan its work; billing settles credits; admin does both.
_OPERATIONS: frozenset[Capability] = frozenset(
    {"all_customers", "noc", "compliance", "attribute", "acknowledge", "maintenance", "incidents"}
)
CAPABILITIES: dict[str, frozenset[Capability]] = {
    "customer": frozenset(),
    "ops": _OPERATIONS,
    "billing": frozenset({"all_customers", "ledger", "settle", "compliance"}),
    "admin": _OPERATIONS | {"ledger", "settle"},
}


def can(user: Account, capability: Capability) -> bool:
    return capability in CAPABILITIES.get(user.role, frozenset())


class LiveConfig:
    """The config the portal serves from and its `Directory`, replaced whole when the
    running process reloads its file, so pages and the API never mix two versions."""

    def __init__(self, config: Config) -> None:
        self.config, self.directory = config, Directory(config)

    def replace(self, config: Config) -> None:
        self.config, self.directory = config, Directory(config)


class Directory:
    """The configured customers, links and contracts, and each viewer's part of them."""

    def __init__(self, config: Config) -> None:
        self._customers = {customer.id: customer for customer in config.customers}
        self._links = {link.id: link for link in config.links}
        self._links_of_customer: dict[str, list[Link]] = {}
        for link in config.links:
            self._links_of_customer.setdefault(link.customer, []).append(link)
        self._site_names = {site.id: site.name or site.id for site in config.all_sites()}
        self._contracts = {contract.id: contract for contract in config.contracts}
        self._contracts_of_link: dict[str, list[Contract]] = {}
        for contract in config.contracts:
            for link_id in contract.links:
                self._contracts_of_link.setdefault(link_id, []).append(contract)

    # --- customers ----------------------------------------------------------------------

    def may_see_customer(self, user: Account, customer_id: str) -> bool:
        if can(user, "all_customers"):
            return True
        return user.role == "customer" and user.customer == customer_id

    def visible_customers(self, user: Account) -> list[Customer]:
        return [c for c in self._customers.values() if self.may_see_customer(user, c.id)]

    def visible_customer(self, user: Account, customer_id: str) -> Customer | None:
        customer = self._customers.get(customer_id)
        if customer is None or not self.may_see_customer(user, customer_id):
            return None
        return customer

    def customer_name(self, customer_id: str) -> str:
        customer = self._customers.get(customer_id)
        return customer.name if customer is not None else customer_id

    def site_name(self, site_id: str) -> str:
        """How a site (a vantage point) is named to people: its name, or its id."""
        return self._site_names.get(site_id, site_id)

    def customer_tz(self, customer_id: str) -> tzinfo:
        customer = self._customers.get(customer_id)
        return customer.tz if customer is not None else UTC

    def viewer_tz(self, user: Account) -> tzinfo:
        """Customers read times in their own zone; staff in UTC, which every NOC shares."""
        if user.role == "customer" and user.customer is not None:
            return self.customer_tz(user.customer)
        return UTC

    # --- links --------------------------------------------------------------------------

    def visible_links(self, user: Account, *, customer_id: str | None = None) -> list[Link]:
        """In config order. Indexed by customer: a NOC of 10,000 links asks on every page."""
        if customer_id is not None:
            if not self.may_see_customer(user, customer_id):
                return []
            return list(self._links_of_customer.get(customer_id, ()))
        if can(user, "all_customers"):
            return list(self._links.values())
        if user.role == "customer" and user.customer is not None:
            return list(self._links_of_customer.get(user.customer, ()))
        return []

    def visible_link(self, user: Account, link_id: str) -> Link | None:
        """The link if it exists and `user` may see it; otherwise None, alike in both cases."""
        link = self._links.get(link_id)
        if link is None or not self.may_see_customer(user, link.customer):
            return None
        return link

    def link(self, link_id: str) -> Link | None:
        """Any configured link, for code that has already checked the viewer's scope."""
        return self._links.get(link_id)

    # --- contracts ----------------------------------------------------------------------

    def visible_contracts(self, user: Account, *, customer_id: str | None = None) -> list[Contract]:
        return [
            contract
            for contract in self._contracts.values()
            if self.may_see_customer(user, contract.customer)
            and (customer_id is None or contract.customer == customer_id)
        ]

    def contracts_of_link(self, link_id: str) -> Sequence[Contract]:
        return self._contracts_of_link.get(link_id, ())
