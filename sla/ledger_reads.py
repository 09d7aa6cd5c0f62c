"""Reads of the credit ledger for the portal's views: one link's newest rows, and where a
row lives.

These go through the ledger's own indexes (its window key, its customer index) and hand
back `LedgerRow`s as the ledger builds them. Nothing here writes, and nothing here checks
who may see a row: callers ask only for what the viewer may already see.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.rows import dict_row, tuple_row

from collector import Database
from sla.ledger import LedgerRow, row_from_db
from sla.queries import query


async def link_rows(
    db: Database,
    customer_id: str,
    pairs: Sequence[tuple[str, str]],
    windows: int,
) -> list[LedgerRow]:
    """The newest `windows` window rows of each (contract id, subject id) pair of
    `customer_id`, with their adjustments, newest window first."""
    if not pairs:
        return []
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            query("ledger_link_rows"),
            {
                "customer_id": customer_id,
                "contract_ids": [contract for contract, _ in pairs],
                "subject_ids": [subject for _, subject in pairs],
                "windows": windows,
            },
        )
        return [row_from_db(row) for row in await cur.fetchall()]


async def locate(db: Database, row_id: int) -> tuple[str, str] | None:
    """(window label, customer id) of the ledger row `row_id`, or None if there is none:
    enough to check a caller's scope before reading the row itself."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(query("ledger_locate"), {"id": row_id})
        found = await cur.fetchone()
    return None if found is None else (found[0], found[1])
