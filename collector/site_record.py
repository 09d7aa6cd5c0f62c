"""The record of the site's blind spans, for operations (`site_blind`).

The site guard calls `note` at each change of its site's state; this keeps the changes
in order and writes them, retrying while the database is away, so the guard (and the
probes behind it) never wait on the database. A change is small and rare: at most
`LIMIT` are kept while the database is away, the oldest dropped first (the spans' own
samples, as unknown, go through the spool as every sample does).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query
from collector.site_guard import SiteStatus, wait_any
from kernel.errors import DatabaseError

log = logging.getLogger(__name__)

LIMIT = 1000
RETRY_S = 5.0


@dataclass(frozen=True, slots=True)
class BlindSpan:
    site_id: str
    starts_at: datetime
    ends_at: datetime | None
    reason: str


class SiteRecord:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._changes: deque[SiteStatus] = deque(maxlen=LIMIT)
        self._wake = asyncio.Event()

    async def note(self, status: SiteStatus) -> None:
        """A change of the site's state (the guard's `on_change`); written soon."""
        self._changes.append(status)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Write changes as they come; on stop, what is left, once."""
        while not stop.is_set():
            self._wake.clear()
            if not await self._write():
                await wait_any((stop,), RETRY_S)
                continue
            await wait_any((self._wake, stop))
        await self._write()

    async def _write(self) -> bool:
        while self._changes:
            status = self._changes[0]
            at = {"site_id": status.site_id, "at": status.since, "reason": status.reason}
            try:
                async with self._db.connection() as conn, conn.transaction():
                    await conn.execute(query("site_blind_end"), at)
                    if status.blind:
                        await conn.execute(query("site_blind_begin"), at)
            except DatabaseError as exc:
                log.warning("site state not recorded yet, database unavailable cause=%s", exc)
                return False
            self._changes.popleft()
        return True


async def recent_blind_spans(db: Database, since: datetime, limit: int = 20) -> list[BlindSpan]:
    """Blind spans open now or ended since `since`, newest first."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("site_blind_recent"), {"since": since, "limit": limit})
        return [BlindSpan(*row) for row in await cur.fetchall()]


async def blind_spans_by_site(
    db: Database, since: datetime, per_site: int
) -> dict[str, list[BlindSpan]]:
    """Per site, its blind spans open now or ended since `since`, newest first, at most
    `per_site` of each; sites without any are left out."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("site_blind_by_site"), {"since": since, "per_site": per_site})
        found: dict[str, list[BlindSpan]] = {}
        for row in await cur.fetchall():
            span = BlindSpan(*row)
            found.setdefault(span.site_id, []).append(span)
        return found
