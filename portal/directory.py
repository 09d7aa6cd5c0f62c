"""Which customers and links exist, and which of them a user may see.

Every page asks here first and renders only what comes back: a customer's view is
filtered before any state is fetched, so no other customer's data ever reaches a
template. An unknown role sees nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, tzinfo

from portal.settings import CustomerLike, LinkLike, UserLike

ROLES_SEEING_ALL_LINKS = frozenset({"ops", "billing", "admin"})


class Directory:
    def __init__(self, customers: Iterable[CustomerLike], links: Iterable[LinkLike]) -> None:
        self._customers = {customer.id: customer for customer in customers}
        self._links = {link.id: link for link in links}

    def visible_links(self, user: UserLike) -> list[LinkLike]:
        return [link for link in self._links.values() if self.may_see(user, link)]

    def visible_link(self, user: UserLike, link_id: str) -> LinkLike | None:
        """The link if it exists and `user` may see it; otherwise None, alike in both cases."""
        link = self._links.get(link_id)
        if link is None or not self.may_see(user, link):
            return None
        return link

    @staticmethod
    def may_see(user: UserLike, link: LinkLike) -> bool:
        if user.role in ROLES_SEEING_ALL_LINKS:
            return True
        if user.role == "customer":
            return user.customer is not None and link.customer == user.customer
        return False

    def customer_name(self, customer_id: str) -> str:
        customer = self._customers.get(customer_id)
        return customer.name if customer is not None else customer_id

    def customer_tz(self, customer_id: str) -> tzinfo:
        customer = self._customers.get(customer_id)
        return customer.tz if customer is not None else UTC
