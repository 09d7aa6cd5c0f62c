"""Outbox events for the outages that begin or end at a link's live edge.

Called by `collector.deriver` in each rewrite's transaction, under its locks, with the
links whose rewrite reached their newest sample: writes link-down and link-recovered
events to the outbox (`collector.outbox`), judged at the link's frontier (its newest
sample), never from the projection beyond it. A history loaded or rebuilt in the past
announces nothing. Nothing here derives intervals or sends a notification.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from collector.intervals import Interval, LinkSpec
from collector.outbox import record_events
from collector.queries import query
from kernel.domain import Event, EventKind, LinkStatus


async def write_outage_events(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], live_edges: Sequence[tuple[LinkSpec, Interval]]
) -> int:
    """Write link-down and link-recovered events for the links whose latest status now
    begins or ends an outage, in the rewrite's transaction and under its locks; return
    how many events went to the outbox. `live_edges`: each link whose rewrite reached its
    newest sample, with its status at that frontier.

    `link_alerts` holds the outages announced and not yet over, so each outage gives one
    down and one recovery however often it is re-derived; a history loaded or rebuilt in
    the past announces nothing, and only the status at the link's frontier counts. A
    link the monitor cannot see (UNKNOWN) neither recovers nor goes down here.
    """
    if not live_edges:
        return 0
    await cur.execute(
        query("link_alerts_select"), {"link_ids": [link.id for link, _ in live_edges]}
    )
    announced: dict[str, datetime] = dict(await cur.fetchall())
    events: list[Event] = []
    starts: dict[str, datetime] = {}
    ended: list[tuple[LinkSpec, datetime, datetime]] = []  # link, down since, up since
    for link, latest in live_edges:
        since = announced.get(link.id)
        if latest.status is LinkStatus.DOWN:
            # Announced already: the same outage, even where a late sample moved its
            # start; it keeps the start it was announced with, which its recovery names.
            if since is None:
                events.append(_down_event(link, latest.starts_at))
                starts[link.id] = latest.starts_at
        elif latest.status in (LinkStatus.UP, LinkStatus.DEGRADED) and since is not None:
            ended.append((link, since, latest.starts_at))
    if ended:
        await cur.execute(
            query("link_outage_ends"),
            {"link_ids": [e[0].id for e in ended], "starts_at": [e[1] for e in ended]},
        )
        outage_end = {(row[0], row[1]): row[2] for row in await cur.fetchall()}
        for link, since, up_since in ended:
            end = outage_end.get((link.id, since)) or up_since
            events.append(_recovered_event(link, since, end, up_since))
        await cur.execute(query("link_alerts_delete"), {"link_ids": [e[0].id for e in ended]})
    if starts:
        await cur.execute(
            query("link_alerts_set"),
            {"link_ids": list(starts), "down_since": list(starts.values())},
        )
    return await record_events(cur, events)


def _down_event(link: LinkSpec, since: datetime) -> Event:
    return Event(
        id=f"link-down:{link.id}:{since.isoformat()}",
        kind=EventKind.LINK_DOWN,
        occurred_at=since,
        customer_id=link.customer,
        link_id=link.id,
        payload={"down_since": since.isoformat()},
    )


def _recovered_event(link: LinkSpec, since: datetime, end: datetime, up_since: datetime) -> Event:
    return Event(
        id=f"link-recovered:{link.id}:{since.isoformat()}",
        kind=EventKind.LINK_RECOVERED,
        occurred_at=up_since,
        customer_id=link.customer,
        link_id=link.id,
        payload={
            "down_since": since.isoformat(),
            "down_until": end.isoformat(),
            "down_s": int((end - since).total_seconds()),
            # Time between the outage's end and the first available sample, when the
            # monitor could not see the link in between.
            "unmeasured_s": int((up_since - end).total_seconds()),
        },
    )
