"""`outage-escalated`: a running outage nobody acknowledged in time is told to the next
route of its escalation chain.

An operations route that takes `link-down` is told of every outage at its confirmed
start; a route told of an outage at `t` that says `escalate_after: d, escalate_to: r`
tells route `r` at `t + d` (exactly then too), unless by then the outage is acknowledged
or over; `r` may escalate further in turn. A route reached by two chains is told once,
by the earlier. Each event's id is (outage, route), so it is stored once however often
passes run, in one process or after a restart; a pass judges only what is true at its
`now`, so an outage acknowledged or over is never escalated again. Only the route named
in the event takes it (`notify.dispatcher.routes_for`). Reads the database; writes
nothing itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.acknowledgements import Acknowledgement, acknowledgements
from collector.database import Database
from collector.state_reads import Incident, incidents
from kernel.config import Config, Route
from kernel.domain import Event, EventKind

_LOOK_BACK = timedelta(days=30)  # a running outage older than this is not news to anyone


@dataclass(frozen=True, slots=True)
class Step:
    """When a route is told of an outage, and by which route (None: its link-down)."""

    route: str
    told_at: datetime
    by: str | None
    step: int  # 0: told by link-down; n: the n-th escalation


def chain_steps(routes: Sequence[Route], start: datetime) -> dict[str, Step]:
    """Every route told of an outage that began at `start` if nobody acknowledges it,
    and when: the routes' escalation chains walked from the operations routes that take
    link-down (the config refuses loops, so the walk ends)."""
    told: dict[str, Step] = {
        r.id: Step(r.id, start, None, 0)
        for r in routes
        if r.customer is None and EventKind.LINK_DOWN in r.kinds()
    }
    by_id = {r.id: r for r in routes}
    pending = list(told.values())
    while pending:
        current = pending.pop()
        route = by_id.get(current.route)
        if route is None or route.escalate_to is None or route.escalate_after is None:
            continue
        due = current.told_at + route.escalate_after
        known = told.get(route.escalate_to)
        if known is None or due < known.told_at:
            step = Step(route.escalate_to, due, route.id, current.step + 1)
            told[route.escalate_to] = step
            pending.append(step)
    return told


def escalations(
    running: Iterable[Incident],
    acknowledged: Mapping[tuple[str, datetime], Acknowledgement],
    routes: Sequence[Route],
    customers: Mapping[str, str],
    now: datetime,
) -> list[Event]:
    """The escalations due at `now` of the outages running then and not acknowledged."""
    events = []
    for outage in running:
        if outage.ends_at is not None or outage.starts_at > now:
            continue
        if (outage.link_id, outage.starts_at) in acknowledged:
            continue
        for step in chain_steps(routes, outage.starts_at).values():
            if step.by is None or step.told_at > now:
                continue
            start = outage.starts_at.astimezone(UTC).isoformat()
            events.append(
                Event(
                    id=f"{EventKind.OUTAGE_ESCALATED.value}:{outage.link_id}:{start}:{step.route}",
                    kind=EventKind.OUTAGE_ESCALATED,
                    occurred_at=step.told_at,
                    customer_id=customers.get(outage.link_id),
                    link_id=outage.link_id,
                    payload={
                        "route": step.route,
                        "from_route": step.by,
                        "step": step.step,
                        "down_since": start,
                        "unacknowledged_s": int((step.told_at - outage.starts_at).total_seconds()),
                    },
                )
            )
    return events


def escalates(config: Config) -> bool:
    return any(r.escalate_to is not None for r in config.notifications.routes)


async def escalation_events(db: Database, config: Config, now: datetime) -> list[Event]:
    if not escalates(config):
        return []
    link_ids = [link.id for link in config.links]
    found = [
        i
        for i in await incidents(db, link_ids, now - _LOOK_BACK, now + timedelta(microseconds=1))
        if i.running
    ]
    if not found:
        return []
    acks = await acknowledgements(
        db,
        sorted({i.link_id for i in found}),
        min(i.starts_at for i in found),
        max(i.starts_at for i in found) + timedelta(microseconds=1),
    )
    customers = {link.id: link.customer for link in config.links}
    return escalations(
        found, {(a.link_id, a.outage_start): a for a in acks}, config.notifications.routes,
        customers, now,
    )  # fmt: skip
