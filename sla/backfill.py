"""Ledger rows for the past: every window since monitoring began that has none yet.

A database that already holds history when the ledger first runs (an upgrade, samples
imported by other means, the demo's generated weeks) has windows nobody computed: their
credits are missing from the ledger while `report sla` shows them. `Backfill` finds those
windows from the ledger itself, so a stopped run resumes where it left off, and writes
them in small steps (one window label planned, or a slice of contracts computed, per
step), each its own transaction: ten thousand contracts times thirteen months never hold
the ledger lock, or the event loop, for long, and the daemon runs the steps in the time
between its refreshes of the running windows.

It never decides figures of its own and never skips the rules: each slice is an ordinary
`refresh_ledger` of one label for the contracts that lack a row there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from psycopg.rows import tuple_row

from collector import Database
from kernel.config import Config
from sla.ledger import TimeRange, refresh_ledger, window_labels
from sla.queries import query
from sla.report import monitoring_began, plan_windows, subjects
from sla.windows import parse_window

log = logging.getLogger(__name__)

BACKFILL_SLICE = 200  # contracts per transaction
PLAN_SLICE = 1000  # contracts planned between two turns of the event loop


class Backfill:
    """Missing window rows since monitoring began, oldest window first, step by step."""

    def __init__(
        self, db: Database, config: Config, *, slice_contracts: int = BACKFILL_SLICE
    ) -> None:
        self._db = db
        self.config = config
        self._slice = slice_contracts
        self._began: dict[str, datetime] | None = None
        self._labels: list[str] = []  # still to look at, oldest first
        self._label = ""
        self._missing: list[str] = []  # contracts of `_label` still without a row
        self._started = 0.0
        self.created = 0  # rows written so far
        self.done = False

    async def step(self, now: datetime) -> bool:
        """Do one bounded piece of the work; False once nothing is left to do."""
        if self.done:
            return False
        if self._began is None:
            await self._start(now)
            return not self.done
        # The state moves on only once a step's work is done: a step that fails (the
        # database away) is tried again by the next call, not skipped.
        if not self._missing:
            if not self._labels:
                self._finish()
                return False
            lacking = await self._lacking(self._labels[0], now)
            self._label, self._missing = self._labels.pop(0), lacking
            return True
        chunk = self._missing[: self._slice]
        refreshed = await refresh_ledger(
            self._db, self.config, [self._label], now, contract_ids=chunk
        )
        self._missing = self._missing[len(chunk) :]
        self.created += refreshed.created
        return True

    async def run(self, now: datetime) -> int:
        """Everything at once (a command, a test): the number of rows written."""
        while await self.step(now):
            pass
        return self.created

    async def _start(self, now: datetime) -> None:
        links = list(dict.fromkeys(i for c in self.config.contracts for i in c.links))
        self._began = await monitoring_began(self._db, links)
        if not self._began:
            self.done = True
            return
        first = min(self._began.values())
        labels = window_labels(self.config, TimeRange(first, now), now)
        self._labels = sorted(labels, key=_start_utc)
        self._started = time.monotonic()
        log.info(
            "ledger backfill started since=%s windows=%d",
            first.isoformat(timespec="seconds"),
            len(self._labels),
        )

    async def _lacking(self, label: str, now: datetime) -> list[str]:
        """The contracts with a window of `label` since monitoring began but no row."""
        assert self._began is not None
        present = await _window_keys(self._db, label)
        ids = [c.id for c in self.config.contracts]
        lacking = []
        for offset in range(0, len(ids), PLAN_SLICE):
            chunk = ids[offset : offset + PLAN_SLICE]
            plan = plan_windows(
                self.config, label, now, contract_ids=chunk, monitored_from=self._began
            )
            lacking += [
                p.contract.id
                for p in plan.todo
                if any((p.contract.id, s.id) not in present for s in subjects(p.contract))
            ]
            await asyncio.sleep(0)  # planning is CPU work: let probes and pages in between
        return lacking

    def _finish(self) -> None:
        self.done = True
        log.info(
            "ledger backfill done rows_created=%d took_s=%.1f",
            self.created,
            time.monotonic() - self._started,
        )


def _start_utc(label: str) -> datetime:
    return parse_window(label, ZoneInfo("UTC")).start.astimezone(UTC)


async def _window_keys(db: Database, label: str) -> set[tuple[str, str]]:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("ledger_window_keys"), {"window": label})
        rows: Sequence[tuple[str, str]] = await cur.fetchall()
        return set(rows)
