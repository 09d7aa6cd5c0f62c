"""The long-running process: probes, collector and portal wired together.

This is the composition root that `linkwatch run` and `linkwatch demo` start. It owns the
order of start-up (database, migrations, maintenance sync, writer, probes, notifications,
portal) and of shutdown (stop probing, flush every held sample, close the portal, close
the database), and stops the whole process when any part of it dies rather than limping on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from aiohttp import web

from collector import (
    Database,
    StorageSettings,
    connect,
    latest_sample_time,
    sync_maintenance,
    upsert_maintenance,
    write_samples,
)
from collector.agents import CLAIM_LIMIT, claim_announced
from collector.deriver import StateDeriver
from collector.housekeeping import run_housekeeping
from collector.pipeline import PipelineSettings, SamplePipeline, storage_health
from collector.recurring import run_announcer, sync_config_series
from collector.rollups import bucket_floor, refresh_after_write, refresh_rollups
from collector.site_guard import SiteGuard
from collector.site_record import SiteRecord
from kernel.config import Config, Link, SiteConfig, Thresholds, load_config
from kernel.config.sites import links_at
from kernel.domain import Sample
from kernel.errors import ConfigError, DatabaseError, LinkwatchError
from kernel.formatting import count_of
from linkwatch import demo_site
from linkwatch.demo import generate_history
from notify import Dispatcher, Evaluator
from portal import PortalSettings, create_app, reload_config, secret_key
from probes import ProbeContext, Scheduler, detect_context, unsupported_probes
from sla.backfill import Backfill
from sla.ledger import (
    TimeRange,
    grace_labels,
    refresh_in_slices,
    refresh_ledger,
    refresh_running,
    warn_of_orphans,
)

log = logging.getLogger(__name__)

ProcessRole = Literal["all", "collector", "portal"]
HOUSEKEEPING_EVERY = timedelta(minutes=30)
LATE_PROBES_S = 2.0  # lag p99 above which the NOC is told the probes run late
ANNOUNCED_EVERY_S = 2.0  # how often the samples probe agents stored are derived


def storage_settings(config: Config) -> StorageSettings:
    database = config.database
    return StorageSettings(
        url=database.url,
        data_dir=config.data_dir,
        timescaledb=database.timescaledb,
        retention=database.retention,
        compress_after=database.compress_after,
        chunk_interval=database.chunk_interval,
        # Each probe stores a sample per interval; TimescaleDB chunks are sized from this.
        ingest_samples_per_s=sum(
            1 / probe.interval.total_seconds() for link in config.links for probe in link.probes
        ),
        pool_min_size=database.pool_min_size,
        pool_max_size=database.pool_max_size,
    )


async def open_database(config: Config, *, owner: bool = False, create: bool = True) -> Database:
    """Connect (starting the embedded server if configured so, and migrating), then bring
    the config's maintenance windows in, where reports read them. Only the `owner` of
    the config's windows (the running daemon) also cancels those taken out of the file
    and reinstates those put back: a one-off command run with another copy of the file
    must not withdraw announced work. `create` False: raise NoDatabase where nothing
    has been stored yet."""
    db = await connect(storage_settings(config), create=create)
    try:
        if owner:
            await _sync_maintenance(db, config)
        else:
            windows = [m.to_window() for m in config.maintenance]
            await upsert_maintenance(db, windows, source="config")
    except BaseException:
        await db.close()
        raise
    return db


async def migrate_only(config: Config) -> list[str]:
    """Connect (which applies pending migrations) and report what was applied."""
    db = await connect(storage_settings(config))
    await db.close()
    return list(db.migrations_applied)


@dataclass(frozen=True)
class _Collecting:
    """The probing side of a process: probes into the pipeline, states after each write,
    notifications from the outbox."""

    pipeline: SamplePipeline
    context: ProbeContext
    scheduler: Scheduler
    deriver: StateDeriver
    dispatcher: Dispatcher
    evaluator: Evaluator
    guard: SiteGuard  # between the probes and the pipeline: a blind site's downs are unknown
    canaries: Scheduler  # the site's canaries, into the guard
    site_record: SiteRecord

    @classmethod
    async def open(cls, db: Database, config: Config) -> _Collecting:
        deriver = StateDeriver(db, config.links)
        pipeline = await SamplePipeline.open(
            db, pipeline_settings(config), on_stored=functools.partial(_stored, db, deriver)
        )
        context = await asyncio.to_thread(detect_context, config.probing)
        record = SiteRecord(db)
        guard = SiteGuard(config.site, pipeline.queue.put, on_change=record.note)
        scheduler = Scheduler(probed_here(config), guard.submit, context, limits=config.probing)
        canaries = Scheduler(canary_links(config), guard.canary, context, limits=config.probing)
        return cls(
            pipeline,
            context,
            scheduler,
            deriver,
            Dispatcher(db, config),
            Evaluator(db, config),
            guard,
            canaries,
            record,
        )


@dataclass
class _Running:
    """The config a running process works from, and every part it built from it: a
    reload hands the new config to each of them, so none keeps an old copy."""

    config: Config
    collecting: _Collecting | None = None
    portal: web.Application | None = None

    async def reload(self, config: Config, db: Database) -> None:
        self.config = config
        if self.collecting is not None:
            self.collecting.scheduler.update(probed_here(config))
            self.collecting.guard.update(config.site)
            self.collecting.canaries.update(canary_links(config))
            self.collecting.deriver.update(config.links)
            self.collecting.dispatcher.update(config)
            self.collecting.evaluator.update(config)
            _warn_unsupported(config)
        if self.portal is not None:
            await reload_config(self.portal, config)
        await _sync_maintenance(db, config)


async def _sync_maintenance(db: Database, config: Config) -> None:
    """The config's maintenance windows into the database, where reports read them; a
    window taken out of the file before it ended is cancelled (logged per window)."""
    windows = [m.to_window() for m in config.maintenance]
    await sync_maintenance(db, windows, source="config", now=datetime.now(UTC))
    series = [s.to_series() for s in config.recurring]
    await sync_config_series(db, series, now=datetime.now(UTC))


async def serve(
    config: Config,
    *,
    role: ProcessRole = "all",
    config_path: Path | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Database, str], Awaitable[None]] | None = None,
    before_start: Callable[[Database], Awaitable[None]] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set), then shut down in order. SIGHUP
    re-reads `config_path` and applies it to every part if it validates."""
    stop = stop or asyncio.Event()
    reload = asyncio.Event()
    _stop_on_signals(stop, reload)
    db = await open_database(config, owner=True)
    try:
        if before_start is not None:
            await before_start(db)
        running = _Running(config)
        if role in ("all", "collector"):
            running.collecting = await _Collecting.open(db, config)
        collecting = running.collecting
        runner: web.AppRunner | None = None
        url = ""
        if role in ("all", "portal"):
            _favour_the_event_loop()
            notices = functools.partial(_notices, db, collecting)
            runner, url = await _start_portal(config, db, notices, collecting)
            running.portal = runner.app
        try:
            # A part that dies cancels the others through the task group: the process
            # stops (and says why) instead of running on without probes or a portal.
            async with asyncio.TaskGroup() as group:
                # Every role: /readyz and the NOC read what it finds, and it restarts an
                # embedded server that died. A check is bounded like a sample write.
                watching = db.watch(stop, check_timeout=config.collector.write_timeout)
                group.create_task(watching, name="database-watch")
                if config_path is not None:
                    reloading = _reloader(config_path, db, running, reload, stop)
                    group.create_task(reloading, name="config-reload")
                if collecting is not None:
                    group.create_task(_collect(config, collecting, stop), name="collector")
                    states_ready = asyncio.Event()
                    catching_up = _catch_up(collecting.deriver, states_ready)
                    group.create_task(catching_up, name="state-catch-up")
                    announced = _derive_announced(db, collecting.deriver, stop)
                    group.create_task(announced, name="agent-samples")
                    group.create_task(_housekeeping(running, db, stop), name="housekeeping")
                    group.create_task(_ledger(running, db, stop, states_ready), name="ledger")
                    group.create_task(
                        collecting.dispatcher.run(stop), name="notification-dispatcher"
                    )
                    group.create_task(collecting.evaluator.run(stop), name="notification-evaluator")
                    group.create_task(run_announcer(db, stop), name="maintenance-announcer")
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
    config: Config,
    db: Database,
    notices: Callable[[], Sequence[str]],
    collecting: _Collecting | None,
) -> tuple[web.AppRunner, str]:
    key = await asyncio.to_thread(secret_key, config.portal.secret_key, config.data_dir)
    settings = dataclasses.replace(PortalSettings.from_config(config.portal), secret_key=key)
    pipeline = collecting.pipeline if collecting is not None else None
    app = create_app(
        settings,
        db=db,
        config=config,
        notices=notices,
        health=functools.partial(storage_health, db, pipeline),
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


# How long a thread holds the GIL while another waits for it (Python's default: 5 ms).
SWITCH_INTERVAL_S = 0.0005


def _favour_the_event_loop() -> None:
    """The portal builds its big views (every link's board row, the ledger's tally, a
    page's HTML) in threads so that requests go on meanwhile; but each time the event
    loop gives up the GIL (every socket read and write) it waits out the thread's turn
    before it may go on. At 10,000 links that held a NOC page to a p99 of 130 ms under 50
    clients while the board was rebuilt; with a tenth of the default turn, 50-65 ms."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def _freeze_startup_objects() -> None:
    """Keep what start-up built (the config's models for every link, the portal's
    directory and templates) out of the garbage collector's full passes: they live as
    long as the process, and with 10,000 links each full pass over them stopped the event
    loop for 0.2 to 0.8 s, which probes and page requests then waited out."""
    gc.collect()
    gc.freeze()


def _notices(db: Database, collecting: _Collecting | None) -> list[str]:
    """What the NOC must know about the monitor itself (shown to staff in the portal)."""
    notices = _database_notices(db)
    if collecting is None:
        return notices
    return (
        notices
        + _site_notices(collecting.guard)
        + _late_probe_notices(collecting.scheduler)
        + _spool_notices(collecting.pipeline)
    )


def _site_notices(guard: SiteGuard) -> list[str]:
    """The site blind now: what its probes see fail is recorded as unknown meanwhile."""
    status = guard.status()
    if not status.blind or status.since is None:
        return []
    return [
        f"This monitor's site {status.site_id} is blind since "
        f"{status.since:%Y-%m-%d %H:%M:%S UTC}: {status.reason}. Failures its probes see "
        "meanwhile are recorded as unknown, not as outages."
    ]


def _database_notices(db: Database) -> list[str]:
    """The database away now, and restarts of the embedded server since this start."""
    health = db.health()
    notices = []
    if not health.reachable:
        notice = (
            f"The database has not answered since {health.since:%Y-%m-%d %H:%M:%S UTC}: "
            "samples are kept in the disk spool until it does."
        )
        if health.next_restart_at is not None:
            tried = (
                f"{health.restart_attempts} attempt{'s' if health.restart_attempts != 1 else ''}"
                " failed so far, see the log; "
                if health.restart_attempts
                else ""
            )
            notice += (
                f" Its embedded PostgreSQL stopped and is being restarted ({tried}"
                f"next try at {health.next_restart_at:%H:%M:%S UTC})."
            )
        notices.append(notice)
    if health.restarts and health.last_restart_at is not None:
        times = "once" if health.restarts == 1 else f"{health.restarts} times"
        down = f" after {health.last_outage_s:.0f} s down" if health.last_outage_s else ""
        where = f" Its server log: {db.embedded.log_file}." if db.embedded is not None else ""
        notices.append(
            f"The embedded PostgreSQL stopped unexpectedly and was restarted {times} since "
            f"Linkwatch started, last at {health.last_restart_at:%Y-%m-%d %H:%M:%S UTC}{down}; "
            f"samples taken meanwhile waited in the disk spool.{where}"
        )
    return notices


def _late_probe_notices(scheduler: Scheduler) -> list[str]:
    notices = []
    for kind in scheduler.kinds():
        lag = scheduler.lag_stats(kind)
        if lag is not None and lag.p99_s > LATE_PROBES_S:
            # Unset, the ICMP slots follow the engine's echo rate: that is what to raise.
            slots = (
                "of echoes a second (probing.icmp_max_pps)"
                if kind in scheduler.sized_from_engine
                else f"of slots (probing.concurrency_per_kind.{kind})"
            )
            notices.append(
                f"{kind.upper()} probes are starting late (p99 {lag.p99_s:.1f} s, worst "
                f"{lag.max_s:.1f} s over the last {count_of(lag.runs, 'run')}): the monitor is "
                f"short of CPU, or {slots}."
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
            f"{count_of(status.samples_pending, 'sample')} "
            f"{'is' if status.samples_pending == 1 else 'are'} waiting in the disk spool{waiting}: "
            f"the database is not taking writes ({status.used_pct:.0f} % of the spool limit)."
        ]
    return []


async def _collect(config: Config, collecting: _Collecting, stop: asyncio.Event) -> None:
    """Probes feed the sample pipeline's bounded queue; the pipeline writes to the
    database, or to the disk spool while the database is away. On stop, the probes finish
    their runs first, their shared sockets close, and the pipeline then flushes everything
    they produced."""
    _warn_unsupported(config)
    _warn_short_queue(config)
    pipeline = collecting.pipeline
    # The guard outlives the probes: it judges what their last runs deliver, then stops.
    probes_done = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(pipeline.run(), name="sample-pipeline")
        group.create_task(collecting.site_record.run(probes_done), name="site-record")
        guarding = group.create_task(collecting.guard.run(probes_done), name="site-guard")
        canaries = group.create_task(collecting.canaries.run(stop), name="canaries")
        probing = group.create_task(collecting.scheduler.run(stop), name="scheduler")
        try:
            await probing
            await canaries
        finally:
            probes_done.set()
            await collecting.context.close()
        await guarding
        await pipeline.stop()
    log.info(
        "collector stopped samples_taken=%d samples_stored=%d",
        pipeline.writer.received,
        pipeline.stored,
    )


def probed_here(config: Config) -> list[Link]:
    """What this process probes: the measurements taken at its own site (`site`); those
    of the other sites are their agents' to take."""
    return links_at(config.links, config.site.id, config.site.id)


def canary_links(config: Config) -> list[Link]:
    """The monitor's site's canaries (see `site_canaries`)."""
    return site_canaries(config.site)


def site_canaries(site: SiteConfig) -> list[Link]:
    """A site's canaries, as the probes of one link of the monitor's own (never stored:
    the canary scheduler's sink is the site guard)."""
    if not site.canaries:
        return []
    return [
        Link.model_construct(
            id=f"site:{site.id}",
            customer="",
            description="",
            probes=list(site.canaries),
            thresholds=Thresholds(),
        )
    ]


def _warn_unsupported(config: Config) -> None:
    for link_id, probe_id, kind in unsupported_probes(config.links):
        log.warning(
            "probe kind not available in this version link=%s probe=%s kind=%s",
            link_id,
            probe_id,
            kind,
        )


def _warn_short_queue(config: Config) -> None:
    """The queue must hold what the probes take while a write waits out its bound, or a
    hung database holds the probes up after all."""
    collector = config.collector
    per_s = sum(1 / p.interval.total_seconds() for link in config.links for p in link.probes)
    holds_s = collector.queue_size / per_s if per_s else float("inf")
    if holds_s < collector.write_timeout.total_seconds() + collector.batch_delay.total_seconds():
        log.warning(
            "collector.queue_size holds %.1f s of samples, less than collector.write_timeout "
            "and batch_delay: probes would wait while a write to a hung database runs out its "
            "time; raise queue_size to at least %d or lower write_timeout "
            "queue_size=%d samples_per_s=%.0f write_timeout_s=%g",
            holds_s,
            int(per_s * (collector.write_timeout + collector.batch_delay).total_seconds()) + 1,
            collector.queue_size,
            per_s,
            collector.write_timeout.total_seconds(),
        )


def pipeline_settings(config: Config) -> PipelineSettings:
    collector = config.collector
    return PipelineSettings(
        spool_dir=config.data_dir / "spool",
        spool_max_bytes=collector.spool_max_mb * 1024 * 1024,
        spool_warn_pct=collector.spool_warn_pct,
        queue_size=collector.queue_size,
        batch_size=collector.batch_size,
        batch_delay=collector.batch_delay,
        write_timeout=collector.write_timeout,
    )


async def _stored(db: Database, deriver: StateDeriver, batch: Sequence[Sample]) -> None:
    """After each committed batch: link states and rollups follow the new samples.
    A DatabaseError here has the pipeline deliver the batch again."""
    await deriver.samples_stored(batch)
    await refresh_after_write(db, batch)


async def _derive_announced(
    db: Database, deriver: StateDeriver, stop: asyncio.Event, every_s: float = ANNOUNCED_EVERY_S
) -> None:
    """States (and rollups) follow what probe agents stored: claim the agents'
    announcements and derive those measurements from their earliest new sample, so that
    outage events and notifications follow agents' samples as they do this process's
    own; claim again at once while a claim comes back full (a backlog), otherwise after
    `every_s`. Derivation that fails on a database outage is kept by the deriver and
    done in a later pass; a claim that fails is left in the table for the next one."""
    failing = False
    while not stop.is_set():
        claimed: dict[tuple[str, str], datetime] = {}
        try:
            claimed = await claim_announced(db)
            if claimed or deriver.pending:
                await deriver.samples_announced(claimed)
            if claimed:
                await _refresh_announced(db, claimed)
        except DatabaseError as exc:
            if not failing:
                log.warning("agents' samples not derived yet, database unavailable cause=%s", exc)
            failing = True
        else:
            failing = False
            if len(claimed) >= CLAIM_LIMIT:
                continue  # more are waiting: no pause while behind
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def _refresh_announced(db: Database, claimed: dict[tuple[str, str], datetime]) -> None:
    """The rollups of the claimed links, from their earliest announced hour up to now
    (the agents' batches themselves are not seen here, only where they begin)."""
    start = bucket_floor(min(claimed.values()), "hour")
    end = bucket_floor(datetime.now(UTC), "hour") + timedelta(hours=1)
    await refresh_rollups(
        db, start, max(end, start + timedelta(hours=1)), link_ids={link for link, _ in claimed}
    )


async def _catch_up(deriver: StateDeriver, done: asyncio.Event) -> None:
    """Derive states for samples stored while no deriver ran (imports, an earlier
    version, a crash between commit and derivation); safe alongside live batches."""
    try:
        derived = await deriver.catch_up()
    except DatabaseError as exc:
        log.warning("state catch-up skipped, database unavailable cause=%s", exc)
        return
    finally:
        done.set()
    if derived:
        log.info("state catch-up done probes=%d", derived)


async def _housekeeping(running: _Running, db: Database, stop: asyncio.Event) -> None:
    """Roll up finished buckets and apply retention at start-up and then periodically."""
    while not stop.is_set():
        config = running.config
        settings = storage_settings(config)
        try:
            await run_housekeeping(db, settings, datetime.now(UTC))  # it logs its summary
        except DatabaseError as exc:
            log.warning("housekeeping skipped, database unavailable cause=%s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HOUSEKEEPING_EVERY.total_seconds())


async def _ledger(
    running: _Running, db: Database, stop: asyncio.Event, states_ready: asyncio.Event
) -> None:
    """Keep the credit ledger current: every contract's running windows once per
    notifications.evaluate_every (what budgets are evaluated at, so the NOC's budget
    figures never lag the budget messages by more), windows still in their grace every
    HOUSEKEEPING_EVERY (only late data changes them), rows closed once their grace is
    over, and in the time left between, the rows of past windows that have none. It
    starts once the state catch-up is done: rows are computed from the states. Each pass
    takes the config as it is then: a reload's contracts are in the next one."""
    await _until(states_ready, stop)
    loop = asyncio.get_running_loop()
    backfill = Backfill(db, running.config)
    next_at = next_grace = loop.time()
    while not stop.is_set():
        config = running.config
        if backfill.config is not config:
            # The ledger says what is missing: the new config's backfill resumes there.
            backfill = Backfill(db, config)
        next_at += config.notifications.evaluate_every.total_seconds()
        now = datetime.now(UTC)
        try:
            # Logs closings and adjustments itself.
            await refresh_running(db, config, now)
            if loop.time() >= next_grace:
                next_grace = loop.time() + HOUSEKEEPING_EVERY.total_seconds()
                await refresh_in_slices(db, config, await grace_labels(db, now), now)
                await warn_of_orphans(db, config)
            while loop.time() < next_at and not stop.is_set():
                if not await backfill.step(datetime.now(UTC)):
                    break
        except DatabaseError as exc:
            log.warning("ledger refresh skipped, database unavailable cause=%s", exc)
        # A pass longer than the period starts the next at once, then keeps the cadence.
        next_at = max(next_at, loop.time())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), next_at - loop.time())


async def _until(event: asyncio.Event, stop: asyncio.Event) -> None:
    """Wait for `event`, or for the stop of the process, whichever comes first."""
    waiters = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())}
    _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        waiter.cancel()


async def _reloader(
    path: Path,
    db: Database,
    running: _Running,
    reload: asyncio.Event,
    stop: asyncio.Event,
    load: Callable[[Path], Config] = load_config,
) -> None:
    """On SIGHUP: validate the file again; apply it to every part only if it is valid.
    A reload that fails for any reason, while reading the file or while applying it,
    leaves the running configuration in force and says why in one line: an operator's
    SIGHUP must never stop the monitor."""
    while True:
        waiters = {asyncio.ensure_future(reload.wait()), asyncio.ensure_future(stop.wait())}
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        if stop.is_set():
            return
        reload.clear()
        try:
            config = await asyncio.to_thread(load, path)
        except ConfigError as exc:
            log.error(
                "config reload rejected, the running configuration stays path=%s %s",
                path,
                _one_line(exc, path),
            )
            continue
        except Exception as exc:
            log.error(
                "config reload failed, the running configuration stays path=%s cause=%s",
                path,
                _cause(exc),
            )
            log.debug("config reload failure", exc_info=True)
            continue
        previous = running.config
        try:
            await running.reload(config, db)
        except DatabaseError as exc:
            # Probing, states and notifications run on the new config already; what
            # needs the database (maintenance, portal accounts) follows at the next reload.
            log.warning("config reload applied without the database cause=%s", exc)
        except Exception as exc:
            await _restore(running, previous, db)
            log.error(
                "config reload failed while applying it, the running configuration stays "
                "path=%s cause=%s",
                path,
                _cause(exc),
            )
            log.debug("config reload failure", exc_info=True)
            continue
        log.info(
            "config reloaded path=%s links=%d probes=%d contracts=%d maintenance=%d "
            "(the portal's own settings and the database and collector sections take "
            "effect at the next restart)",
            path,
            len(config.links),
            sum(len(link.probes) for link in config.links),
            len(config.contracts),
            len(config.maintenance),
        )


RELOAD_PROBLEMS_SHOWN = 5


def _one_line(error: ConfigError, path: Path) -> str:
    """A rejected config's problems on one log line, the first few in full."""
    shown = "; ".join(p.render(str(path)) for p in error.problems[:RELOAD_PROBLEMS_SHOWN])
    more = len(error.problems) - RELOAD_PROBLEMS_SHOWN
    rest = f"; and {count_of(more, 'more problem')}" if more > 0 else ""
    return (
        f"problems={len(error.problems)}: {shown}{rest} "
        f"(`linkwatch check-config {path}` lists them all)"
    )


def _cause(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _restore(running: _Running, previous: Config, db: Database) -> None:
    """Hand the parts the configuration they ran with before a reload that failed half
    way through, so that none keeps the new one; a failure even then is logged."""
    try:
        await running.reload(previous, db)
    except Exception as exc:
        log.error("restoring the running configuration failed cause=%s", _cause(exc))
        log.debug("restore failure", exc_info=True)


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
    receiver, port = await demo_site.start_receiver()
    try:
        await _serve_demo(demo_site.channels_at(config, port), weeks=weeks)
    finally:
        await receiver.cleanup()


async def _serve_demo(config: Config, *, weeks: int) -> None:
    async def load_history(db: Database) -> None:
        now = datetime.now(UTC)
        start = now - timedelta(weeks=weeks)
        last = await latest_sample_time(db)
        if last is not None and last > start:
            start = last  # history up to the previous run is already there
        history = await asyncio.to_thread(
            functools.partial(
                generate_history, down_now=demo_site.DOWN_NOW, breached=demo_site.BREACHED
            ),
            config,
            start,
            now,
        )
        stored = 0
        for offset in range(0, len(history.samples), 50_000):
            stored += await write_samples(db, history.samples[offset : offset + 50_000])
        upcoming = demo_site.upcoming_window(config, now)
        await upsert_maintenance(db, [*history.maintenance, upcoming], source="demo")
        # States and the recent ledger before the portal opens: its first page shows the
        # outage running, the credits owed and the compliance figures.
        await StateDeriver(db, config.links).catch_up()
        await demo_site.tell_the_story(db, config, now)
        await refresh_ledger(db, config, TimeRange(now - demo_site.LEDGER_AT_ONCE, now), now)
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
