"""Escalation chains between notification routes, checked on the raw config.

A route that says `escalate_after: 15m` and `escalate_to: <route id>` passes an outage it
was told of (its link-down, or an escalation) on to that route when nobody acknowledged
the outage in that time. Chains are for operations: both ends are routes without a
customer. The target must exist and no chain may come back to a route it passed, or an
outage would be escalated forever. Each error names the route's path and what to change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kernel.config.raw import Path_
from kernel.formatting import excerpt


def check_escalation(
    routes: Sequence[tuple[int, Mapping[str, Any]]],
) -> Iterator[tuple[Path_, str]]:
    by_id = {str(r["id"]): (i, r) for i, r in routes if isinstance(r.get("id"), str)}
    known = ", ".join(sorted(by_id)) or "none defined"
    nexts: dict[str, str] = {}
    for index, route in routes:
        target = route.get("escalate_to")
        if not isinstance(target, str):
            continue
        path: Path_ = ("notifications", "routes", index)
        name = str(route.get("id"))
        if route.get("customer") is not None:
            yield (
                (*path, "escalate_to"),
                "a customer's route cannot escalate: escalation is for operations; remove "
                "escalate_after and escalate_to, or remove customer",
            )
            continue
        if target not in by_id:
            yield (
                (*path, "escalate_to"),
                f"unknown route {excerpt(target)}; defined routes: {known}",
            )
            continue
        if by_id[target][1].get("customer") is not None:
            yield (
                (*path, "escalate_to"),
                f"route {excerpt(target)} is a customer's route: escalations are for "
                "operations only; escalate to a route without customer",
            )
            continue
        nexts[name] = target
    reported: set[str] = set()
    for start in nexts:
        chain = [start]
        while (following := nexts.get(chain[-1])) is not None and following not in chain:
            chain.append(following)
        if following is None or following in reported:
            continue
        loop = chain[chain.index(following) :]
        if start not in loop:
            continue  # reported from a route on the loop itself
        reported.update(loop)
        index = by_id[start][0]
        yield (
            ("notifications", "routes", index, "escalate_to"),
            f"escalation loops: {' -> '.join([*loop, following])}; end the chain at a route "
            "without escalate_to",
        )
