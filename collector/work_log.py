"""The operations trail: who did what, when, about which maintenance or outage.

Each workflow that staff run from the portal or the API (maintenance announced,
rescheduled or cancelled; outages acknowledged, updated, grouped) writes one entry per
action with `record_work`, in the same transaction as the action itself, so the trail
never claims what did not happen nor misses what did. Entries are never changed or
deleted (019_work_log.sql refuses it). Billing reads them beside the ledger's audit
trail. Nothing here decides what an action means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query

MAX_DETAIL_CHARS = 4000


@dataclass(frozen=True, slots=True)
class WorkEntry:
    id: int
    at: datetime
    actor: str
    action: str  # "maintenance-announced", "outage-acknowledged", ...
    subject: str  # what it is about: "maintenance:mw-7", "outage:link-a:2026-12-07T...", ...
    link_ids: tuple[str, ...]
    customer_ids: tuple[str, ...]
    detail: str


async def record_work(
    conn: psycopg.AsyncConnection[Any],
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    detail: str = "",
    link_ids: Sequence[str] = (),
    customer_ids: Sequence[str] = (),
) -> int:
    """Append one entry inside the caller's transaction; its id."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(
        query("work_log_insert"),
        {
            "at": at,
            "actor": actor,
            "action": action,
            "subject": subject,
            "link_ids": list(link_ids),
            "customer_ids": list(customer_ids),
            "detail": detail[:MAX_DETAIL_CHARS],
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def work_entries(
    db: Database,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    subject: str | None = None,
    actor: str | None = None,
    link_ids: Sequence[str] | None = None,
    customer_ids: Sequence[str] | None = None,
    limit: int = 200,
) -> list[WorkEntry]:
    """Entries in [since, until), newest first. `link_ids`/`customer_ids` (given
    together; None: every entry) keep those about these links or customers."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("work_log_recent"),
            {
                "since": since,
                "until": until,
                "subject": subject,
                "actor": actor,
                "link_ids": None if link_ids is None else list(link_ids),
                "customer_ids": None if customer_ids is None else list(customer_ids or ()),
                "limit": limit,
            },
        )
        return [
            WorkEntry(i, at, who, action, subj, tuple(links), tuple(customers), detail)
            for i, at, who, action, subj, links, customers, detail in await cur.fetchall()
        ]
