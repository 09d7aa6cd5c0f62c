"""Stored maintenance windows and sample bookkeeping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from collector.database import Database
from collector.stored import (
    latest_sample_time,
    maintenance_windows,
    sync_maintenance,
    upsert_maintenance,
)
from collector.writer import write_samples
from kernel.domain import MaintenanceWindow, Outcome, Sample

T0 = datetime(2025, 3, 3, 22, 0, tzinfo=UTC)


def window(id_: str, *, hours: int = 2, links: tuple[str, ...] = ()) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=id_,
        starts_at=T0,
        ends_at=T0 + timedelta(hours=hours),
        announced_at=T0 - timedelta(days=5),
        description=f"work {id_}",
        link_ids=links,
    )


async def test_upsert_inserts_then_updates_by_id(database: Database) -> None:
    assert (
        await upsert_maintenance(
            database, [window("a", links=("l1",)), window("b")], source="config"
        )
        == 2
    )
    assert (
        await upsert_maintenance(database, [window("a", hours=4, links=("l1",))], source="config")
        == 1
    )
    found = await maintenance_windows(database, T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert found == [window("a", hours=4, links=("l1",)), window("b")]
    async with database.connection() as conn:
        cur = await conn.execute("SELECT id, global FROM maintenance_windows ORDER BY id")
        assert await cur.fetchall() == [("a", False), ("b", True)]


async def test_upsert_leaves_another_sources_window_alone(database: Database) -> None:
    await upsert_maintenance(database, [window("a")], source="portal")
    assert await upsert_maintenance(database, [window("a", hours=9)], source="config") == 0
    (kept,) = await maintenance_windows(database, T0, T0 + timedelta(days=1))
    assert kept.ends_at == T0 + timedelta(hours=2)


async def test_latest_sample_time(database: Database) -> None:
    assert await latest_sample_time(database) is None
    await write_samples(
        database,
        [Sample("l", "p", T0 + timedelta(minutes=m), Outcome.UP) for m in (5, 1, 3)],
    )
    assert await latest_sample_time(database) == T0 + timedelta(minutes=5)


async def test_a_window_taken_out_of_the_config_is_cancelled_unless_it_has_ended(
    database: Database,
) -> None:
    done = replace(
        window("done"), starts_at=T0 - timedelta(hours=5), ends_at=T0 - timedelta(hours=3)
    )
    running = replace(window("running"), starts_at=T0 - timedelta(hours=1))
    ahead = replace(
        window("ahead"), starts_at=T0 + timedelta(days=1), ends_at=T0 + timedelta(days=2)
    )
    await sync_maintenance(
        database, [done, running, ahead], source="config", now=T0 - timedelta(days=1)
    )
    portal = window("portal-made")
    await upsert_maintenance(database, [portal], source="portal")

    sync = await sync_maintenance(database, [], source="config", now=T0)

    assert sorted(sync.cancelled) == ["ahead", "running"]
    found = {
        w.id: w
        for w in await maintenance_windows(database, T0 - timedelta(days=1), T0 + timedelta(days=3))
    }
    assert found["done"].cancelled_at is None  # finished work stays as it was
    assert found["portal-made"].cancelled_at is None  # another source's window
    assert found["running"].cancelled_at == T0
    assert found["running"].covers_until == T0  # the work stopped now
    assert found["ahead"].withdrawn
    assert found["ahead"].covers_until == found["ahead"].starts_at  # covers nothing

    # Taking them out again changes nothing; putting one back puts it in force again.
    assert (
        await sync_maintenance(database, [], source="config", now=T0 + timedelta(hours=1))
    ).cancelled == ()
    await sync_maintenance(database, [ahead], source="config", now=T0 + timedelta(hours=2))
    (again,) = [
        w
        for w in await maintenance_windows(database, T0, T0 + timedelta(days=3))
        if w.id == "ahead"
    ]
    assert again.cancelled_at is None
