"""One message for operations when many links fail together: links behind the same
upstream (a device or PoP, the link's `upstream`) that went down within a minute of
each other reach operations' routes as one `links-down`, not one link-down each.
Customers keep their own link-down for their links; nothing here touches their routes.

The rule (`group_of`): a link's downs behind one upstream, in order of their start; the
first starts a group, and each later one whose start is at most `GROUP_SPAN` after the
group's first joins it, else starts the next. So two links down 60 s apart are one
message, 61 s apart two.

When: an operations route's link-down of a link with an upstream is due once every
link that could join its group has had time to be confirmed down (`GROUP_SPAN` plus
the slowest confirmation behind that upstream, `due_for_operations`). The first member
to fall due writes the group's event, whose id is the group's first down, and is
suppressed with a note naming it; the others find it and are suppressed alike. A member
confirmed too late to be named in it (its data arrived late) is sent on its own, so no
link's outage goes untold. A route that does not take `links-down` gets every link-down
as before. Nothing here sends a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from collector.outbox import record_events
from kernel.config import Config, Route
from kernel.domain import Event, EventKind
from notify.queries import query

GROUP_SPAN = timedelta(seconds=60)
LOOK_BACK = timedelta(hours=1)  # how far back a chain of groups is followed
NOTE_PREFIX = "grouped into "

Down = tuple[str, datetime]  # (link id, down since)


def group_of(downs: Sequence[Down], member: Down) -> list[Down]:
    """The group of `member` among the downs behind one upstream, in order of start."""
    groups: list[list[Down]] = []
    for down in sorted(set(downs), key=lambda d: (d[1], d[0])):
        if groups and down[1] - groups[-1][0][1] <= GROUP_SPAN:
            groups[-1].append(down)
        else:
            groups.append([down])
    return next((g for g in groups if member in g), [member])


def _groups_for(route: Route, event: Event) -> bool:
    return (
        event.kind is EventKind.LINK_DOWN
        and route.customer is None
        and EventKind.LINKS_DOWN in route.kinds()
    )


def _peers(config: Config, link_id: str | None) -> tuple[str | None, list[str]]:
    """The link's upstream and every link behind it (itself included)."""
    link = next((li for li in config.links if li.id == link_id), None)
    if link is None or link.upstream is None:
        return None, []
    return link.upstream, [li.id for li in config.links if li.upstream == link.upstream]


def _confirmation(config: Config, link_ids: Sequence[str]) -> timedelta:
    """The longest a down behind the upstream takes to be confirmed: `confirm` samples
    of its slowest availability probe."""
    wanted = set(link_ids)
    spans = [
        probe.interval * probe.confirm
        for link in config.links
        if link.id in wanted
        for probe in link.probes
        if probe.availability
    ]
    return max(spans, default=timedelta(0))


def due_for_operations(event: Event, route: Route, due: datetime, config: Config) -> datetime:
    """When `route` first takes `event`: a grouped link-down waits for its group."""
    if not _groups_for(route, event):
        return due
    upstream, peers = _peers(config, event.link_id)
    if upstream is None or len(peers) < 2:
        return due
    return max(due, event.occurred_at + GROUP_SPAN + _confirmation(config, peers))


async def grouped_into(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], event: Event, route: Route, config: Config
) -> str | None:
    """Why `route` does not get this link-down itself (the group's message says it), or
    None when it does. Writes the group's `links-down` event the first time."""
    if not _groups_for(route, event):
        return None
    upstream, peers = _peers(config, event.link_id)
    if upstream is None or len(peers) < 2 or event.link_id is None:
        return None
    await cur.execute(
        query("link_downs_of"),
        {
            "link_ids": peers,
            "since": event.occurred_at - LOOK_BACK,
            "until": event.occurred_at + GROUP_SPAN,
        },
    )
    downs = [(str(link_id), since) for link_id, since in await cur.fetchall()]
    member = (event.link_id, event.occurred_at)
    group = group_of([*downs, member], member)
    if len(group) < 2:
        return None
    first = group[0][1]
    group_id = f"links-down:{upstream}:{first.isoformat()}"
    if await _named(cur, group_id) is None:
        await _write_group(cur, config, group_id, upstream, group)
    # Another member may have written it meanwhile, with the group as it saw it.
    named = await _named(cur, group_id)
    return f"{NOTE_PREFIX}{group_id}" if named and event.link_id in named else None


async def _named(cur: psycopg.AsyncCursor[tuple[Any, ...]], group_id: str) -> set[str] | None:
    """The links a group's message names; None before it is written."""
    await cur.execute(query("event_payload"), {"id": group_id})
    row = await cur.fetchone()
    if row is None:
        return None
    return {str(item.get("link_id")) for item in row[0].get("links", [])}


async def _write_group(
    cur: psycopg.AsyncCursor[tuple[Any, ...]],
    config: Config,
    group_id: str,
    upstream: str,
    group: Sequence[Down],
) -> None:
    first = group[0][1]
    customers = {link.id: link.customer for link in config.links}
    await record_events(
        cur,
        [
            Event(
                id=group_id,
                kind=EventKind.LINKS_DOWN,
                occurred_at=first,
                customer_id=None,
                payload={
                    "upstream": upstream,
                    "first_down": first.isoformat(),
                    "last_down": group[-1][1].isoformat(),
                    "count": len(group),
                    "links": [
                        {
                            "link_id": link_id,
                            "customer_id": customers.get(link_id),
                            "down_since": since.isoformat(),
                        }
                        for link_id, since in group
                    ],
                },
            )
        ],
    )


def was_grouped(note: str | None) -> bool:
    """Whether a suppressed delivery's note says its group's message told it."""
    return note is not None and note.startswith(NOTE_PREFIX)
