"""Cross-section references, checked on the raw data: ids defined once, names that exist.

Checked before the models are valid, so that they are reported alongside field errors
rather than only after those are fixed. Each kind of reference has its own check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from linkwatch.config.raw import Path_, _list, _mappings, _render_path
from linkwatch.domain import EventKind
from linkwatch.formatting import excerpt


def _check_references(data: Mapping[str, Any]) -> Iterator[tuple[Path_, str]]:
    """Cross-section rules, checked on the raw data so they are reported alongside
    field errors rather than only after those are fixed."""

    def items(section: str) -> list[tuple[int, dict[str, Any]]]:
        return _mappings(data.get(section))

    def ids(section: str) -> set[str]:
        return {str(item["id"]) for _, item in items(section) if "id" in item}

    for section in ("customers", "links", "plans", "contracts", "maintenance"):
        yield from _duplicate_ids(items(section), (section,))

    customers, links = ids("customers"), ids("links")
    known_customers, known_links = _listing(customers), _listing(links)

    def customer_ref(path: Path_, value: object) -> Iterator[tuple[Path_, str]]:
        if isinstance(value, str) and value not in customers:
            yield path, f"unknown customer {excerpt(value)}; defined customers: {known_customers}"

    for index, link in items("links"):
        yield from customer_ref(("links", index, "customer"), link.get("customer"))
        probes = link.get("probes")
        seen_probes: set[str] = set()
        for p_index, probe in enumerate(probes if isinstance(probes, list) else []):
            probe_id = probe.get("id") if isinstance(probe, dict) else None
            if isinstance(probe_id, str):
                if probe_id in seen_probes:
                    yield (
                        ("links", index, "probes", p_index, "id"),
                        f"duplicate probe id {excerpt(probe_id)} within link "
                        f"{excerpt(link.get('id'))}",
                    )
                seen_probes.add(probe_id)

    link_customer = {
        str(link.get("id")): link.get("customer") for _, link in items("links") if "id" in link
    }
    plans = ids("plans")
    for index, contract in items("contracts"):
        yield from customer_ref(("contracts", index, "customer"), contract.get("customer"))
        plan = contract.get("plan")
        if isinstance(plan, str) and plan not in plans:
            known_plans = _listing(plans)
            yield (
                ("contracts", index, "plan"),
                f"unknown plan {excerpt(plan)}; defined plans: {known_plans}",
            )
        for l_index, link_id in enumerate(_list(contract.get("links"))):
            path = ("contracts", index, "links", l_index)
            if isinstance(link_id, str) and link_id not in links:
                yield path, f"unknown link {excerpt(link_id)}; defined links: {known_links}"
            elif (
                isinstance(link_id, str)
                and link_customer.get(link_id) != contract.get("customer")
                and contract.get("customer") in customers
                and link_customer.get(link_id) in customers
            ):
                yield (
                    path,
                    f"link {excerpt(link_id)} belongs to customer "
                    f"{excerpt(link_customer.get(link_id))}, "
                    f"not to the contract's customer {excerpt(contract.get('customer'))}",
                )

    for index, window in items("maintenance"):
        for l_index, link_id in enumerate(_list(window.get("links"))):
            if isinstance(link_id, str) and link_id not in links:
                yield (
                    ("maintenance", index, "links", l_index),
                    f"unknown link {excerpt(link_id)}; defined links: {known_links}",
                )
        for c_index, customer_id in enumerate(_list(window.get("customers"))):
            yield from customer_ref(("maintenance", index, "customers", c_index), customer_id)

    seen_users: dict[str, int] = {}
    for index, user in items("users"):
        if user.get("customer") is not None:
            yield from customer_ref(("users", index, "customer"), user.get("customer"))
        name = user.get("name")
        if isinstance(name, str):
            if name in seen_users:
                yield (
                    ("users", index, "name"),
                    f"duplicate user {excerpt(name)}; already defined as users[{seen_users[name]}]",
                )
            seen_users.setdefault(name, index)

    yield from _check_notifications(data.get("notifications"), customer_ref)


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
