"""A ledger row computed by an earlier release lacks the record fields added since: the
next refresh stores them, and billing's audit trail says nothing changed, since no
figure billing saw did."""

from __future__ import annotations

from collector import Database
from sla import ledger
from sla.ledger import refresh_ledger
from tests.portal_kit import NOW, running_portal
from tests.test_portal_billing import CONFIG, LAST_WEEK, THIS_WEEK, history

ADDED_LATER = ("customer_caused_s", "outside_hours_s", "restore_pct", "quality_down_s")


async def _forget(db: Database, row_id: int, names: tuple[str, ...]) -> None:
    """The row as an earlier release stored it: without these figures."""
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE ledger SET extra_figures = extra_figures - %(names)s::text[] WHERE id = %(id)s",
            {"names": list(names), "id": row_id},
        )


async def test_fields_added_since_are_stored_without_an_audit_entry(database: Database) -> None:
    async with running_portal(database, CONFIG, history=history) as kit:
        await refresh_ledger(kit.db, kit.config, [LAST_WEEK, THIS_WEEK], NOW)
        closed = [r for r in await ledger.list_rows(kit.db, window=LAST_WEEK)]
        assert closed
        assert {r.status for r in closed} == {"closed"}
        before = len(await ledger.audit_log(kit.db))
        for row in closed:
            await _forget(kit.db, row.id, ADDED_LATER)

        done = await refresh_ledger(kit.db, kit.config, [LAST_WEEK], NOW)

        after = {r.id: r for r in await ledger.list_rows(kit.db, window=LAST_WEEK)}
        for row in closed:
            assert {name: after[row.id].extra_figures.get(name) for name in ADDED_LATER} == {
                name: row.extra_figures.get(name) for name in ADDED_LATER
            }
        assert len(await ledger.audit_log(kit.db)) == before
        assert done.adjustments == ()


async def test_a_changed_figure_is_still_audited(database: Database) -> None:
    async with running_portal(database, CONFIG, history=history) as kit:
        await refresh_ledger(kit.db, kit.config, [LAST_WEEK, THIS_WEEK], NOW)
        (row, *_) = await ledger.list_rows(kit.db, window=LAST_WEEK)
        before = len(await ledger.audit_log(kit.db))
        async with kit.db.connection() as conn:
            await conn.execute(
                'UPDATE ledger SET extra_figures = extra_figures || \'{"restore_pct": "5"}\''
                " WHERE id = %(id)s",
                {"id": row.id},
            )
        await refresh_ledger(kit.db, kit.config, [LAST_WEEK], NOW)
        entries = await ledger.audit_log(kit.db)
        assert len(entries) == before + 1
        assert entries[-1].action == "recomputed"
