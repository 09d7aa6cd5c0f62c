"""What operations see of the deliveries: counts, the latest ones, and a retry of a
failed one. Read-only but for `retry`, which only puts a failed delivery back in line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import tuple_row

from collector.database import Database
from kernel.domain import EventKind
from notify.queries import query

STATUSES = ("failed", "pending", "sent", "suppressed")


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    event_id: str
    route_id: str
    channel_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    note: str | None
    sent_at: datetime | None
    updated_at: datetime
    kind: EventKind
    occurred_at: datetime
    customer_id: str | None
    link_id: str | None


async def counts(db: Database) -> dict[str, int]:
    """Deliveries per status, every status a key."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("deliveries_counts"))
        found: dict[str, int] = dict(await cur.fetchall())
    return {status: int(found.get(status, 0)) for status in STATUSES}


async def failed(db: Database) -> int:
    """How many deliveries have failed (an index lookup: the NOC dashboard asks often)."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("deliveries_failed_count"))
        row = await cur.fetchone()
    return int(row[0]) if row is not None else 0


async def recent(db: Database, statuses: Sequence[str] | None, limit: int) -> list[DeliveryRow]:
    """The latest deliveries (by their last change), of `statuses` (None: all)."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            query("deliveries_recent"),
            {"statuses": None if statuses is None else list(statuses), "limit": limit},
        )
        rows = await cur.fetchall()
    return [_row(row) for row in rows]


def _row(row: tuple[object, ...]) -> DeliveryRow:
    values = list(row)
    values[10] = EventKind(str(values[10]))
    return DeliveryRow(*values)  # type: ignore[arg-type]


async def retry(db: Database, event_id: str, route_id: str, now: datetime) -> bool:
    """Put a failed delivery back in line with its attempts reset; False if it was not
    failed (already retried, or no such delivery)."""
    async with db.connection() as conn:
        cur = await conn.execute(
            query("delivery_retry"), {"event_id": event_id, "route_id": route_id, "now": now}
        )
        return cur.rowcount == 1
