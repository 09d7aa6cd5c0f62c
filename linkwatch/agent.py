"""`linkwatch agent`: a process at one site that only probes.

It probes its share of the site's measurements (`links_at` the site; shared with the
site's other agents by lease, `collector.agents`), through the site's guard (its
canaries), into the sample pipeline and the central database given by `database.url`,
with its own disk spool under `data_dir/agents/<site>-<name>/` for the time that
database is away. After each stored batch it announces the batch's measurements, which
the central `linkwatch run` derives into link states.

It never derives states, serves the portal, sends notifications, keeps house or runs
migrations: its database role may only insert samples and keep its own row
(README, "Roles and grants"). A config it cannot run with (no database URL, a site
not defined, a schema without the agent tables) stops it with exit status 2 and what
to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import signal
import socket
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from collector import Database, connect
from collector.agents import (
    AgentIdentity,
    AgentLease,
    AgentReport,
    agent_tables_exist,
    announce,
    register,
)
from collector.assignment import share
from collector.pipeline import SamplePipeline
from collector.site_guard import SiteGuard
from collector.site_record import SiteRecord
from kernel import __version__
from kernel.config import Config, Link, SiteConfig
from kernel.config.sites import links_at
from kernel.domain import Sample
from kernel.errors import LinkwatchError
from linkwatch.daemon import pipeline_settings, site_canaries, storage_settings
from probes import Scheduler, detect_context

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class AgentRefused(LinkwatchError):
    """The agent cannot run with what it was given; the message says what to fix."""

    exit_code = 2


def agent_site(config: Config, site_id: str) -> SiteConfig:
    """The site `--site` names, among the config's `sites`."""
    for site in config.sites:
        if site.id == site_id:
            return site
    defined = ", ".join(site.id for site in config.sites) or "none (add them under sites:)"
    if site_id == config.site.id:
        raise AgentRefused(
            f"--site {site_id} is where `linkwatch run` measures from itself (site:); agents "
            f"serve the other sites: {defined}"
        )
    raise AgentRefused(f"--site {site_id} is not defined in the config; defined sites: {defined}")


def agent_name(name: str | None) -> str:
    """The agent's name within its site: `--name`, or the host's name."""
    chosen = name if name is not None else socket.gethostname().split(".")[0]
    if not _NAME.match(chosen):
        raise AgentRefused(
            f"--name {chosen!r}: use letters, digits, '.', '_' and '-' (at most 63), "
            "starting with a letter or digit"
        )
    return chosen


def spool_dir(config: Config, site_id: str, name: str) -> Path:
    return config.data_dir / "agents" / f"{site_id}-{name}"


def site_links(config: Config, site_id: str) -> list[Link]:
    """Every measurement taken at `site_id`, before it is shared among its agents."""
    return links_at(config.links, site_id, config.site.id)


async def run_agent(
    config: Config, site_id: str, name: str | None = None, *, stop: asyncio.Event | None = None
) -> None:
    """Probe the agent's share of its site until SIGINT/SIGTERM (or `stop`), then flush
    what it holds and mark itself stopped, so that its links move at once."""
    site = agent_site(config, site_id)
    name = agent_name(name)
    if config.database.url is None:
        raise AgentRefused(
            "an agent stores its samples in the central database: set database.url in the "
            "config (the embedded database is only for `linkwatch run`)"
        )
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    settings = dataclasses.replace(storage_settings(config), pool_min_size=1)
    db = await connect(settings, migrations=False)
    try:
        async with db.connection() as conn:
            ready = await agent_tables_exist(conn)
        if not ready:
            raise AgentRefused(
                f"database {db.name} lacks the agent tables: run `linkwatch db migrate` on "
                "the central database first"
            )
        me = AgentIdentity(
            id=f"{site.id}/{name}",
            site_id=site.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
        )
        lease = config.collector.agent_lease
        await register(db, me, lease)
        log.info(
            "agent started agent=%s site=%s measurements=%d lease_s=%g database=%s",
            me.id,
            site.id,
            sum(len(link.probes) for link in site_links(config, site.id)),
            lease.total_seconds(),
            db.name,
        )
        await _Agent(config, site, me, db, spool_dir(config, site.id, name)).run(stop)
    finally:
        await db.close()
        log.info("agent stopped")


class _Agent:
    def __init__(
        self, config: Config, site: SiteConfig, me: AgentIdentity, db: Database, spool: Path
    ) -> None:
        self._config = config
        self._spool_dir = spool
        self._site = site
        self._me = me
        self._db = db
        self._links = site_links(config, site.id)
        self._share: frozenset[str] | None = None
        self._last_sample_at: datetime | None = None

    async def _stored(self, batch: Sequence[Sample]) -> None:
        await announce(self._db, batch)
        newest = max(sample.observed_at for sample in batch)
        if self._last_sample_at is None or newest > self._last_sample_at:
            self._last_sample_at = newest

    async def run(self, stop: asyncio.Event) -> None:
        config = self._config
        settings = dataclasses.replace(pipeline_settings(config), spool_dir=self._spool_dir)
        pipeline = await SamplePipeline.open(self._db, settings, on_stored=self._stored)
        context = await asyncio.to_thread(detect_context, config.probing)
        record = SiteRecord(self._db)
        guard = SiteGuard(self._site, pipeline.queue.put, on_change=record.note)

        async def stamped(sample: Sample) -> None:
            """Each sample names the agent that took it (its site is in the probe id)."""
            await guard.submit(dataclasses.replace(sample, agent_id=self._me.id))

        # Nothing is probed until the first heartbeat says which links are this agent's.
        scheduler = Scheduler([], stamped, context, limits=config.probing)
        canaries = Scheduler(
            site_canaries(self._site), guard.canary, context, limits=config.probing
        )

        def report() -> AgentReport:
            spool = pipeline.status()
            status = guard.status()
            return AgentReport(
                spool_bytes=spool.bytes_used,
                queued=spool.samples_pending,
                blind_since=status.since if status.blind else None,
                canaries_failing=status.failing,
                last_sample_at=self._last_sample_at,
            )

        def on_agents(live: list[str]) -> None:
            mine = frozenset(share((link.id for link in self._links), live, self._me.id))
            if mine == self._share:
                return
            self._share = mine
            scheduler.update([link for link in self._links if link.id in mine])
            log.info(
                "agent share changed agent=%s links=%d of %d live_agents=%d",
                self._me.id,
                len(mine),
                len(self._links),
                len(live),
            )

        lease = AgentLease(self._db, self._me, config.collector.agent_lease, report, on_agents)
        probes_done = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            watching = self._db.watch(stop, check_timeout=config.collector.write_timeout)
            group.create_task(watching, name="database-watch")
            group.create_task(pipeline.run(), name="sample-pipeline")
            group.create_task(record.run(probes_done), name="site-record")
            guarding = group.create_task(guard.run(probes_done), name="site-guard")
            group.create_task(lease.run(stop), name="agent-lease")
            probing_canaries = group.create_task(canaries.run(stop), name="canaries")
            probing = group.create_task(scheduler.run(stop), name="scheduler")
            try:
                await probing
                await probing_canaries
            finally:
                probes_done.set()
                await context.close()
            await guarding
            await pipeline.stop()
        log.info(
            "agent collector stopped samples_taken=%d samples_stored=%d",
            pipeline.writer.received,
            pipeline.stored,
        )


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, _request_stop, stop, signum)
    # SIGHUP reloads `linkwatch run`; sent to an agent by the same habit, it must not
    # end it (its default action), only say that a restart applies a new config.
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, _no_reload)


def _no_reload() -> None:
    log.warning(
        "an agent does not reload its config on SIGHUP; restart it to apply a new one "
        "(SIGTERM hands its links to the site's other agents meanwhile)"
    )


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    if not stop.is_set():
        log.info("agent shutting down signal=%s", signal.Signals(signum).name)
    stop.set()
