"""The compliance rate's read of the ledger: one query for every contract's window counts,
however many rows the ledger holds (`sla.compliance` turns them into rates).

Only reads; nothing here checks who may see a customer: callers ask only for what the
viewer may already see (`customer` None: every customer).
"""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import dict_row

from collector import Database
from sla.compliance import WindowCount
from sla.queries import query


async def window_counts(
    db: Database, since: datetime, customer: str | None = None
) -> list[WindowCount]:
    """Per contract and window ending after `since`: its window rows met and counted."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query("compliance_window_counts"), {"since": since, "customer": customer})
        return [WindowCount(**row) for row in await cur.fetchall()]
