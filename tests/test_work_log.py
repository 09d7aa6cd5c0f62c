"""The operations trail: each action staff take is one entry, kept as written, shown to
billing beside the ledger's audit trail, and filtered to a customer's links."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from collector import Database
from collector.work_log import record_work, work_entries
from kernel.errors import DatabaseError
from tests.helpers import element_by_id, text_of
from tests.portal_kit import NOW, running_portal


async def _record(db: Database, **entry: object) -> int:
    async with db.connection() as conn:
        return await record_work(conn, **entry)  # type: ignore[arg-type]


async def test_entries_come_back_newest_first_and_by_customer(database: Database) -> None:
    await _record(
        database,
        at=NOW,
        actor="olga",
        action="maintenance-announced",
        subject="maintenance:mw-1",
        detail="fibre splice, 02:00-04:00",
        link_ids=["acme-fra-1"],
        customer_ids=["acme"],
    )
    await _record(
        database,
        at=NOW + timedelta(minutes=5),
        actor="ada",
        action="outage-acknowledged",
        subject="outage:globex-nyc-1",
        link_ids=["globex-nyc-1"],
    )
    every = await work_entries(database)
    assert [(e.actor, e.action) for e in every] == [
        ("ada", "outage-acknowledged"),
        ("olga", "maintenance-announced"),
    ]
    acme = await work_entries(database, link_ids=["acme-fra-1"], customer_ids=["acme"])
    assert [e.subject for e in acme] == ["maintenance:mw-1"]
    assert acme[0].detail == "fibre splice, 02:00-04:00"
    # A global action names the customer only: it still concerns the customer.
    await _record(
        database,
        at=NOW + timedelta(minutes=9),
        actor="olga",
        action="maintenance-cancelled",
        subject="maintenance:mw-2",
        customer_ids=["acme"],
    )
    assert [
        e.subject for e in await work_entries(database, link_ids=[], customer_ids=["acme"])
    ] == [
        "maintenance:mw-2",
        "maintenance:mw-1",
    ]
    assert [e.actor for e in await work_entries(database, actor="ada")] == ["ada"]
    assert await work_entries(database, since=NOW + timedelta(hours=1)) == []


@pytest.mark.parametrize("statement", ["UPDATE work_log SET actor = 'x'", "DELETE FROM work_log"])
async def test_no_client_can_change_or_remove_an_entry(database: Database, statement: str) -> None:
    await _record(database, at=NOW, actor="olga", action="maintenance-announced", subject="m:1")
    with pytest.raises((DatabaseError, psycopg.Error), match="append-only"):
        async with database.connection() as conn:
            await conn.execute(statement)
    assert [e.actor for e in await work_entries(database)] == ["olga"]


async def test_billing_reads_the_trail_beside_the_ledgers(database: Database) -> None:
    async with running_portal(database) as kit:
        await _record(
            database,
            at=NOW - timedelta(minutes=30),
            actor="olga",
            action="maintenance-announced",
            subject="maintenance:mw-9",
            detail="announced to acme: 2026-11-20 02:00-04:00 CET",
            link_ids=["acme-fra-1"],
            customer_ids=["acme"],
        )
        await kit.sign_in("bill")
        section = element_by_id(await kit.page("/billing/audit"), "section", "operations-trail")
        shown = text_of(section)
        assert "olga maintenance-announced maintenance:mw-9 acme-fra-1" in shown
        assert "announced to acme: 2026-11-20 02:00-04:00 CET" in shown
        other = element_by_id(
            await kit.page("/billing/audit?customer=globex"), "section", "operations-trail"
        )
        assert "mw-9" not in other
        assert "No operations entries match." in text_of(other)
        await kit.sign_out()
        await kit.sign_in("alice")
        await kit.page("/billing/audit", status=404)
