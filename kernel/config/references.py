"""Cross-section references, checked on the raw data: ids defined once, names that exist.

Checked before the models are valid, so that they are reported alongside field errors
rather than only after those are fixed. Each kind of reference has its own check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kernel.config.escalation import check_escalation
from kernel.config.raw import Path_, _list, _mappings, _render_path
from kernel.domain import EventKind
from kernel.formatting import excerpt


def _check_references(data: Mapping[str, Any]) -> Iterator[tuple[Path_, str]]:
    """Cross-section rules, checked on the raw data so they are reported alongside
    field errors rather than only after those are fixed."""
    for section in ("customers", "links", "plans", "contracts", "maintenance"):
        yield from _duplicate_ids(_mappings(data.get(section)), (section,))
    defined = _Defined.of(data)
    for index, link in _mappings(data.get("links")):
        yield from defined.customer(("links", index, "customer"), link.get("customer"))
        yield from _duplicate_probe_ids(index, link)
    for index, contract in _mappings(data.get("contracts")):
        yield from _check_contract(index, contract, defined)
    for index, window in _mappings(data.get("maintenance")):
        yield from _check_maintenance(index, window, defined)
    yield from _duplicate_ids(_mappings(data.get("recurring")), ("recurring",))
    for index, series in _mappings(data.get("recurring")):
        for l_index, link_id in enumerate(_list(series.get("links"))):
            yield from defined.link(("recurring", index, "links", l_index), link_id)
        for c_index, customer_id in enumerate(_list(series.get("customers"))):
            yield from defined.customer(("recurring", index, "customers", c_index), customer_id)
    yield from _check_sites(data)
    yield from _check_users(_mappings(data.get("users")), defined)
    yield from _check_notifications(data.get("notifications"), defined.customer)


@dataclass(frozen=True)
class _Defined:
    """The ids the file defines, and one check per kind of reference to them."""

    customers: set[str]
    links: set[str]
    plans: set[str]
    link_customer: dict[str, object]  # each link's customer, as the file gives it
    known_customers: str  # the listing an error names
    known_links: str

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> _Defined:
        def ids(section: str) -> set[str]:
            return {str(item["id"]) for _, item in _mappings(data.get(section)) if "id" in item}

        customers, links = ids("customers"), ids("links")
        link_customer = {
            str(link.get("id")): link.get("customer")
            for _, link in _mappings(data.get("links"))
            if "id" in link
        }
        return cls(
            customers, links, ids("plans"), link_customer, _listing(customers), _listing(links)
        )

    def customer(self, path: Path_, value: object) -> Iterator[tuple[Path_, str]]:
        if isinstance(value, str) and value not in self.customers:
            yield (
                path,
                f"unknown customer {excerpt(value)}; defined customers: {self.known_customers}",
            )

    def link(self, path: Path_, value: object) -> Iterator[tuple[Path_, str]]:
        if isinstance(value, str) and value not in self.links:
            yield path, f"unknown link {excerpt(value)}; defined links: {self.known_links}"

    def plan(self, path: Path_, value: object) -> Iterator[tuple[Path_, str]]:
        if isinstance(value, str) and value not in self.plans:
            yield path, f"unknown plan {excerpt(value)}; defined plans: {_listing(self.plans)}"

    def link_of_customer(
        self, path: Path_, link_id: object, customer: object
    ) -> Iterator[tuple[Path_, str]]:
        """A known link that a contract names belongs to the contract's customer (where
        both customers are known: an unknown one is reported as that)."""
        owner = self.link_customer.get(link_id) if isinstance(link_id, str) else None
        if (
            isinstance(link_id, str)
            and link_id in self.links
            and owner != customer
            and customer in self.customers
            and owner in self.customers
        ):
            yield (
                path,
                f"link {excerpt(link_id)} belongs to customer {excerpt(owner)}, "
                f"not to the contract's customer {excerpt(customer)}",
            )


def _duplicate_probe_ids(index: int, link: Mapping[str, Any]) -> Iterator[tuple[Path_, str]]:
    """A probe id names one probe within its link."""
    probes = link.get("probes")
    seen_probes: set[str] = set()
    for p_index, probe in enumerate(probes if isinstance(probes, list) else []):
        probe_id = probe.get("id") if isinstance(probe, dict) else None
        if isinstance(probe_id, str):
            if probe_id in seen_probes:
                yield (
                    ("links", index, "probes", p_index, "id"),
                    f"duplicate probe id {excerpt(probe_id)} within link {excerpt(link.get('id'))}",
                )
            seen_probes.add(probe_id)


def _check_sites(data: Mapping[str, Any]) -> Iterator[tuple[Path_, str]]:
    """Site ids are unique across `site` and `sites`; the sites a link's vantage or a
    probe's measured_from name exist; a site that takes part in a quorum vote has
    canaries, so that its blindness is known and not counted as the link's outage."""
    home = data.get("site")
    home_id = home.get("id", "local") if isinstance(home, dict) else "local"
    canaries: dict[str, bool] = {}
    if isinstance(home_id, str):
        canaries[home_id] = bool(_list(home.get("canaries")) if isinstance(home, dict) else [])
    for index, site in _mappings(data.get("sites")):
        site_id = site.get("id")
        if not isinstance(site_id, str):
            continue
        if site_id in canaries:
            yield ("sites", index, "id"), f"duplicate site id {excerpt(site_id)}"
        canaries[site_id] = bool(_list(site.get("canaries")))
    known = _listing(set(canaries))

    def defined(path: Path_, site_id: object) -> Iterator[tuple[Path_, str]]:
        if isinstance(site_id, str) and site_id not in canaries:
            yield path, f"unknown site {excerpt(site_id)}; defined sites: {known}"

    for index, link in _mappings(data.get("links")):
        vantage = link.get("vantage")
        measured = vantage if isinstance(vantage, dict) else {}
        quorum = measured.get("quorum", 1)
        for s_index, site_id in enumerate(_list(measured.get("sites"))):
            path: Path_ = ("links", index, "vantage", "sites", s_index)
            yield from defined(path, site_id)
            voting = isinstance(quorum, int) and quorum >= 2
            if voting and isinstance(site_id, str) and canaries.get(site_id) is False:
                yield (
                    path,
                    f"site {excerpt(site_id)} takes part in a quorum of {quorum} but has no "
                    "canaries: its blindness would count as the link seen down; give the "
                    "site canaries",
                )
        for p_index, probe in _mappings(link.get("probes")):
            if "measured_from" not in probe:
                continue
            path = ("links", index, "probes", p_index, "measured_from")
            if vantage is not None:
                yield (
                    path,
                    "a probe of a link with a vantage is measured from each of its sites; "
                    "drop measured_from",
                )
            yield from defined(path, probe["measured_from"])


def _check_contract(
    index: int, contract: Mapping[str, Any], defined: _Defined
) -> Iterator[tuple[Path_, str]]:
    customer = contract.get("customer")
    yield from defined.customer(("contracts", index, "customer"), customer)
    yield from defined.plan(("contracts", index, "plan"), contract.get("plan"))
    for l_index, link_id in enumerate(_list(contract.get("links"))):
        path = ("contracts", index, "links", l_index)
        yield from defined.link(path, link_id)
        yield from defined.link_of_customer(path, link_id, customer)


def _check_maintenance(
    index: int, window: Mapping[str, Any], defined: _Defined
) -> Iterator[tuple[Path_, str]]:
    for l_index, link_id in enumerate(_list(window.get("links"))):
        yield from defined.link(("maintenance", index, "links", l_index), link_id)
    for c_index, customer_id in enumerate(_list(window.get("customers"))):
        yield from defined.customer(("maintenance", index, "customers", c_index), customer_id)


def _check_users(
    users: Sequence[tuple[int, dict[str, Any]]], defined: _Defined
) -> Iterator[tuple[Path_, str]]:
    """A user's customer exists, and a user name is defined once."""
    seen_users: dict[str, int] = {}
    for index, user in users:
        if user.get("customer") is not None:
            yield from defined.customer(("users", index, "customer"), user.get("customer"))
        name = user.get("name")
        if isinstance(name, str):
            if name in seen_users:
                yield (
                    ("users", index, "name"),
                    f"duplicate user {excerpt(name)}; already defined as users[{seen_users[name]}]",
                )
            seen_users.setdefault(name, index)


def _listing(names: Iterable[str], most: int = 10) -> str:
    """The ids a reference could have named; a config of 10,000 links names a few."""
    ordered = sorted(names)
    if len(ordered) > most:
        return f"{', '.join(ordered[:most])}, ... ({len(ordered):,} in all)"
    return ", ".join(ordered) or "none defined"


def _duplicate_ids(
    items: Sequence[tuple[int, dict[str, Any]]], path: Path_
) -> Iterator[tuple[Path_, str]]:
    seen: dict[str, int] = {}
    for index, item in items:
        item_id = item.get("id")
        if not isinstance(item_id, str):
            continue
        if item_id in seen:
            first = _render_path((*path, seen[item_id]))
            yield (*path, index, "id"), f"duplicate id {excerpt(item_id)}; already used by {first}"
        else:
            seen[item_id] = index


def _check_notifications(
    raw: object, customer_ref: Callable[[Path_, object], Iterator[tuple[Path_, str]]]
) -> Iterator[tuple[Path_, str]]:
    section = raw if isinstance(raw, dict) else {}

    def entries(key: str) -> list[tuple[int, dict[str, Any]]]:
        return _mappings(section.get(key))

    for key in ("channels", "routes"):
        yield from _duplicate_ids(entries(key), ("notifications", key))
    channel_kinds = {
        item["id"]: item.get("kind")
        for _, item in entries("channels")
        if isinstance(item.get("id"), str)
    }
    known = _listing(channel_kinds)
    for index, route in entries("routes"):
        path: Path_ = ("notifications", "routes", index)
        channel = route.get("channel")
        if isinstance(channel, str) and channel not in channel_kinds:
            yield (
                (*path, "channel"),
                f"unknown channel {excerpt(channel)}; defined channels: {known}",
            )
        elif route.get("to") is not None and channel_kinds.get(str(channel)) != "email":
            yield (*path, "to"), f"channel {excerpt(channel)} is not e-mail; remove to"
        if route.get("customer") is not None:
            yield from customer_ref((*path, "customer"), route.get("customer"))
            events = route.get("events")
            for e_index, name in enumerate(events if isinstance(events, list) else []):
                if name == EventKind.MONITOR_BLIND.value:
                    yield (
                        (*path, "events", e_index),
                        "monitor-blind is about the monitor, for operations only; "
                        "remove it or remove customer",
                    )
    yield from check_escalation(entries("routes"))
