"""The long-running process: probes, collector and portal wired together.

This is the composition root that `linkwatch run` and `linkwatch demo` start. It owns the
order of start-up (database, migrations, maintenance sync, writer, probes, notifications,
portal) and of shutdown (stop probing, flush every held sample, close the portal, close
the database), and stops the whole process when any part of it dies rather than limping on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from aiohttp import web

from collector import (
    Database,
    StorageSettings,
    connect,
    latest_sample_time,
    upsert_maintenance,
    write_samples,
)
from collector.housekeeping import run_housekeeping
from collector.pipeline import PipelineSettings, SamplePipeline
from collector.rollups import refresh_after_write
from collector.states import StateDeriver
from linkwatch.config import Config, load_config
from linkwatch.demo import generate_history
from linkwatch.domain import Sample
from linkwatch.errors import ConfigError, DatabaseError, LinkwatchError
from notify import Dispatcher, Evaluator
from portal import PortalSettings, create_app
from probes import ProbeContext, Scheduler, detect_context, unsupported_probes
from sla.ledger import recent_range, refresh_ledger

log = logging.getLogger(__name__)

Role = Literal["all", "collector", "portal"]
HOUSEKEEPING_EVERY = timedelta(minutes=30)
LATE_PROBES_S = 2.0  # lag p99 above which the NOC is told the probes run late


def storage_settings(config: Config) -> StorageSettings:
    database = config.database
    return StorageSettings(
        url=database.url,
        data_dir=config.data_dir,
        timescaledb=database.timescaledb,
        retention=database.retention,
        compress_after=database.compress_after,
        chunk_interval=database.chunk_interval,
        pool_min_size=database.pool_min_size,
        pool_max_size=database.pool_max_size,
    )


async def open_database(config: Config) -> Database:
    """Connect (starting the embedded server if configured so, and migrating), then bring
    the config's maintenance windows into the database where reports read them."""
    db = await connect(storage_settings(config))
    try:
        await upsert_maintenance(db, [m.to_window() for m in config.maintenance], source="config")
    except BaseException:
        await db.close()
        raise
    return db


async def migrate_only(config: Config) -> list[str]:
    """Connect (which applies pending migrations) and report what was applied."""
    db = await connect(storage_settings(config))
    await db.close()
    return list(db.migrations_applied)


async def serve(
    config: Config,
    *,
    role: Role = "all",
    config_path: Path | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Database, str], Awaitable[None]] | None = None,
    before_start: Callable[[Database], Awaitable[None]] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set), then shut down in order. SIGHUP
    re-reads `config_path` and applies it to the probes if it validates."""
    stop = stop or asyncio.Event()
    reload = asyncio.Event()
    _stop_on_signals(stop, reload)
    db = await open_database(config)
    try:
        if before_start is not None:
            await before_start(db)
        pipeline: SamplePipeline | None = None
        scheduler: Scheduler | None = None
        context: ProbeContext | None = None
        deriver = StateDeriver(db, config.links)
        if role in ("all", "collector"):
            pipeline = await SamplePipeline.open(
                db, pipeline_settings(config), on_stored=functools.partial(_stored, db, deriver)
            )
            context = await asyncio.to_thread(detect_context, config.probing)
            scheduler = Scheduler(config.links, pipeline.queue.put, context, limits=config.probing)
        runner: web.AppRunner | None = None
        url = ""
        if role in ("all", "portal"):
            notices = functools.partial(_notices, pipeline, scheduler)
            runner, url = await _start_portal(config, db, notices)
        try:
            # A part that dies cancels the others through the task group: the process
            # stops (and says why) instead of running on without probes or a portal.
            async with asyncio.TaskGroup() as group:
                if pipeline is not None and scheduler is not None and context is not None:
                    collecting = _collect(config, pipeline, scheduler, context, stop)
                    group.create_task(collecting, name="collector")
                    dispatcher, evaluator = Dispatcher(db, config), Evaluator(db, config)
                    if config_path is not None:
                        reloading = _reloader(
                            config_path, db, scheduler, (dispatcher, evaluator), reload, stop
                        )
                        group.create_task(reloading, name="config-reload")
                    group.create_task(_catch_up(deriver), name="state-catch-up")
                    group.create_task(_housekeeping(config, db, stop), name="housekeeping")
                    group.create_task(dispatcher.run(stop), name="notification-dispatcher")
                    group.create_task(evaluator.run(stop), name="notification-evaluator")
                if on_ready is not None:
                    await on_ready(db, url)
                _freeze_startup_objects()
                await stop.wait()
        finally:
            if runner is not None:
                await runner.cleanup()
    finally:
        await db.close()
        log.info("linkwatch stopped")


async def _start_portal(
    config: Config, db: Database, notices: Callable[[], Sequence[str]]
) -> tuple[web.AppRunner, str]:
    app = create_app(
        PortalSettings.from_config(config.portal), db=db, config=config, notices=notices
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = config.portal.host, config.portal.port
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise LinkwatchError(
            f"the portal cannot listen on {config.portal.listen}: {exc.strerror or exc}; "
            "choose another address with portal.listen (or --listen for the demo)"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    log.info("portal listening url=%s", url)
    return runner, url


def _freeze_startup_objects() -> None:
    """Keep what start-up built (the config's models for every link, the portal's
    directory and templates) out of the garbage collector's full passes: they live as
    long as the process, and with 10,000 links each full pass over them stopped the event
    loop for 0.2 to 0.8 s, which probes and page requests then waited out."""
    gc.collect()
    gc.freeze()


def _notices(pipeline: SamplePipeline | None, scheduler: Scheduler | None) -> list[str]:
    """What the NOC must know about the monitor itself (shown to staff in the portal)."""
    notices = [] if scheduler is None else _late_probe_notices(scheduler)
    if pipeline is None:
        return notices
    return notices + _spool_notices(pipeline)


def _late_probe_notices(scheduler: Scheduler) -> list[str]:
    notices = []
    for kind in scheduler.kinds():
        lag = scheduler.lag_stats(kind)
        if lag is not None and lag.p99_s > LATE_PROBES_S:
            notices.append(
                f"{kind.upper()} probes are starting late (p99 {lag.p99_s:.1f} s, worst "
                f"{lag.max_s:.1f} s over the last {lag.runs:,} runs): the monitor is short "
                f"of CPU, or of slots (probing.concurrency_per_kind.{kind})."
            )
    return notices


def _spool_notices(pipeline: SamplePipeline) -> list[str]:
    status = pipeline.status()
    if status.full:
        return [
            f"The disk spool is full ({status.bytes_used / 2**20:.0f} MB): the database has "
            "not taken samples for a while and probing is paused until it does. "
            "Check the database, or raise collector.spool_max_mb."
        ]
    if status.warning or status.samples_pending:
        since = status.oldest_pending_at
        waiting = f" since {since:%Y-%m-%d %H:%M UTC}" if since else ""
        return [
            f"{status.samples_pending:,} samples are waiting in the disk spool{waiting}: "
            f"the database is not taking writes ({status.used_pct:.0f} % of the spool limit)."
        ]
    return []


async def _collect(
    config: Config,
    pipeline: SamplePipeline,
    scheduler: Scheduler,
    context: ProbeContext,
    stop: asyncio.Event,
) -> None:
    """Probes feed the sample pipeline's bounded queue; the pipeline writes to the
    database, or to the disk spool while the database is away. On stop, the probes finish
    their runs first, their shared sockets close, and the pipeline then flushes everything
    they produced."""
    for link_id, probe_id, kind in unsupported_probes(config.links):
        log.warning(
            "probe kind not available in this version link=%s probe=%s kind=%s",
            link_id,
            probe_id,
            kind,
        )
    async with asyncio.TaskGroup() as group:
        group.create_task(pipeline.run(), name="sample-pipeline")
        probing = group.create_task(scheduler.run(stop), name="scheduler")
        try:
            await probing
        finally:
            await context.close()
        await pipeline.stop()
    log.info("collector stopped samples_stored=%d", pipeline.stored)


def pipeline_settings(config: Config) -> PipelineSettings:
    collector = config.collector
    return PipelineSettings(
        spool_dir=config.data_dir / "spool",
        spool_max_bytes=collector.spool_max_mb * 1024 * 1024,
        spool_warn_pct=collector.spool_warn_pct,
        queue_size=collector.queue_size,
        batch_size=collector.batch_size,
        batch_delay=collector.batch_delay,
    )


async def _stored(db: Database, deriver: StateDeriver, batch: Sequence[Sample]) -> None:
    """After each committed batch: link states and rollups follow the new samples.
    A DatabaseError here has the pipeline deliver the batch again."""
    await deriver.samples_stored(batch)
    await refresh_after_write(db, batch)


async def _catch_up(deriver: StateDeriver) -> None:
    """Derive states for samples stored while no deriver ran (imports, an earlier
    version, a crash between commit and derivation); safe alongside live batches."""
    try:
        derived = await deriver.catch_up()
    except DatabaseError as exc:
        log.warning("state catch-up skipped, database unavailable cause=%s", exc)
        return
    if derived:
        log.info("state catch-up done probes=%d", derived)


async def _housekeeping(config: Config, db: Database, stop: asyncio.Event) -> None:
    """Roll up finished buckets and apply retention at start-up and then periodically;
    keep the credit ledger's recent rows current and close them once their grace ends."""
    settings = storage_settings(config)
    while not stop.is_set():
        try:
            await run_housekeeping(db, settings, datetime.now(UTC))  # it logs its summary
        except DatabaseError as exc:
            log.warning("housekeeping skipped, database unavailable cause=%s", exc)
        now = datetime.now(UTC)
        try:
            # Logs closings and adjustments itself.
            await refresh_ledger(db, config, recent_range(config, now), now)
        except DatabaseError as exc:
            log.warning("ledger refresh skipped, database unavailable cause=%s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HOUSEKEEPING_EVERY.total_seconds())


async def _reloader(
    path: Path,
    db: Database,
    scheduler: Scheduler,
    notifiers: tuple[Dispatcher, Evaluator],
    reload: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """On SIGHUP: validate the file again; apply it only if it is valid."""
    while True:
        waiters = {asyncio.ensure_future(reload.wait()), asyncio.ensure_future(stop.wait())}
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        if stop.is_set():
            return
        reload.clear()
        try:
            config = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            log.error("config reload rejected, the running configuration stays\n%s", exc)
            continue
        scheduler.update(config.links)
        for notifier in notifiers:
            notifier.update(config)
        try:
            windows = [m.to_window() for m in config.maintenance]
            await upsert_maintenance(db, windows, source="config")
        except DatabaseError as exc:
            log.warning("maintenance windows not updated on reload cause=%s", exc)
        log.info(
            "config reloaded path=%s links=%d probes=%d (portal accounts and pages take "
            "the new file at the next restart)",
            path,
            len(config.links),
            sum(len(link.probes) for link in config.links),
        )


def _stop_on_signals(stop: asyncio.Event, reload: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, _request_stop, stop, signum)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, reload.set)


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    if not stop.is_set():
        log.info("shutting down signal=%s", signal.Signals(signum).name)
    stop.set()


# --- demo ---------------------------------------------------------------------------------

# config/demo.yaml: every demo account's password is its name plus this suffix.
DEMO_PASSWORD_SUFFIX = "-demo"  # noqa: S105 - published demo logins, not a secret


async def serve_demo(config: Config, *, weeks: int = 8) -> None:
    async def load_history(db: Database) -> None:
        now = datetime.now(UTC)
        start = now - timedelta(weeks=weeks)
        last = await latest_sample_time(db)
        if last is not None and last > start:
            start = last  # history up to the previous run is already there
        history = await asyncio.to_thread(generate_history, config, start, now)
        stored = 0
        for offset in range(0, len(history.samples), 50_000):
            stored += await write_samples(db, history.samples[offset : offset + 50_000])
        await upsert_maintenance(db, history.maintenance, source="demo")
        log.info(
            "demo history loaded from=%s samples_stored=%d maintenance_windows=%d",
            start.isoformat(timespec="seconds"),
            stored,
            len(history.maintenance),
        )

    async def banner(db: Database, url: str) -> None:
        lines = [
            "",
            f"Linkwatch demo is running: {url}",
            f"  database: {db.name}",
            "  logins (user / password):",
        ]
        for user in config.users:
            scope = (
                f"customer {config.customer(user.customer).name}" if user.customer else user.role
            )
            lines.append(f"    {user.name:<10} {user.name + DEMO_PASSWORD_SUFFIX:<15} {scope}")
        lines.append("  Stop with Ctrl-C.\n")
        print("\n".join(lines), file=sys.stderr, flush=True)

    await serve(config, before_start=load_history, on_ready=banner)
