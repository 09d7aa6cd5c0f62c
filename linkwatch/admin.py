"""One-shot administrative commands that need the database: import, state rebuilds,
statistics. Each opens the database (starting the embedded one if configured so), does
its work and closes it again; nothing here runs probes or serves pages.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from collector.importer import ImportReport, import_samples, parse_samples_csv
from collector.rollups import refresh_after_write, refresh_rollups
from collector.states import StateDeriver, rebuild_states
from linkwatch.config import Config
from linkwatch.daemon import open_database, storage_settings
from linkwatch.errors import LinkwatchError

MAX_ERRORS_SHOWN = 100
UTC_ZONE = ZoneInfo("UTC")


class ImportRejected(LinkwatchError):
    """A sample file had bad rows; nothing from it was stored."""

    exit_code = 2


async def import_file(config: Config, path: Path) -> ImportReport:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            parsed = parse_samples_csv(handle, config.links)
    except (OSError, UnicodeDecodeError) as exc:
        raise LinkwatchError(f"{path}: cannot read the file: {exc}") from None
    if parsed.errors:
        shown = [f"  {path}:{e.line}: {e.message}" for e in parsed.errors[:MAX_ERRORS_SHOWN]]
        more = len(parsed.errors) - len(shown)
        if more:
            shown.append(f"  ... and {more} more")
        count = len(parsed.errors)
        raise ImportRejected(
            f"{path}: {count} bad row{'s' if count != 1 else ''}; nothing was imported\n"
            + "\n".join(shown)
        )
    db = await open_database(config)
    try:
        report = await import_samples(db, parsed.samples)
        # The same derivation as live samples: states and rollups follow the import.
        await StateDeriver(db, config.links).samples_stored(parsed.samples)
        await refresh_after_write(db, parsed.samples)
        return report
    finally:
        await db.close()


class BadArgument(LinkwatchError):
    """A command-line value the user can fix."""

    exit_code = 2


async def sla_report(
    config: Config, label: str, now: datetime, customer: str | None = None
) -> list[dict[str, Any]]:
    from sla.records import record
    from sla.report import contract_windows
    from sla.windows import parse_window

    try:
        parse_window(label, UTC_ZONE)
    except ValueError as exc:
        raise BadArgument(f"--window {exc}") from None
    if customer is not None and customer not in {c.id for c in config.customers}:
        known = ", ".join(c.id for c in config.customers) or "none defined"
        raise BadArgument(f"--customer {customer!r} is not a customer; defined: {known}")
    db = await open_database(config)
    try:
        results = await contract_windows(db, config, label, now, customer_id=customer)
    finally:
        await db.close()
    return [record(item, now) for item in results]


async def db_stats(config: Config, now: datetime) -> str:
    from collector.housekeeping import database_stats, render_stats
    from collector.spool import inspect_spool

    spool = inspect_spool(
        config.data_dir / "spool",
        max_bytes=config.collector.spool_max_mb * 2**20,
        warn_pct=config.collector.spool_warn_pct,
    )
    db = await open_database(config)
    try:
        return render_stats(await database_stats(db, spool_status=spool, now=now))
    finally:
        await db.close()


async def housekeeping(config: Config, now: datetime) -> str:
    from collector.housekeeping import run_housekeeping

    db = await open_database(config)
    try:
        return (await run_housekeeping(db, storage_settings(config), now)).summary()
    finally:
        await db.close()


async def rebuild(config: Config, start: datetime, end: datetime) -> list[str]:
    if end <= start:
        raise BadArgument(f"--to {end.isoformat()} is not after --from {start.isoformat()}")
    db = await open_database(config)
    try:
        report = await rebuild_states(db, config.links, start, end)
        await refresh_rollups(db, start, end)
        return report.lines()
    finally:
        await db.close()
