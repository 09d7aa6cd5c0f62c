"""The notifications outbox: events written beside the changes that cause them.

`record_events` takes the cursor of the caller's transaction, so an event commits or
rolls back with the state change it reports. Ids are deterministic and conflicts are
ignored, so the same happening seen twice (a re-derivation, a second evaluation, a
restart) is stored once. Delivering them is `notify/`'s job; nothing here sends anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from collector.database import Database
from collector.queries import query
from kernel.domain import Event


async def record_events(cur: psycopg.AsyncCursor[Any], events: Sequence[Event]) -> int:
    """Insert the events not stored yet, in the caller's transaction; return how many."""
    if not events:
        return 0
    await cur.execute(
        query("events_insert"),
        {
            "ids": [e.id for e in events],
            "kinds": [e.kind.value for e in events],
            "occurred_at": [e.occurred_at for e in events],
            "customer_ids": [e.customer_id for e in events],
            "link_ids": [e.link_id for e in events],
            "payloads": [json.dumps(e.payload, default=str) for e in events],
        },
    )
    return max(cur.rowcount, 0)


async def store_events(db: Database, events: Sequence[Event]) -> int:
    """`record_events` in a transaction of its own (for events no other write causes)."""
    if not events:
        return 0
    async with db.connection() as conn, conn.transaction():
        return await record_events(conn.cursor(), events)
