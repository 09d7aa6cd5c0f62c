"""Runs every configured probe on its own fixed cadence and hands samples to a sink.

Each probe starts at a random offset within its interval (so a thousand probes with the
same interval do not fire at once) and then keeps a fixed-deadline schedule,
``next_at += interval``, so slow runs never stretch the cadence. One semaphore bounds how
many runs are in flight. The scheduler never touches the database: the sink does.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from linkwatch.config import AnyProbe, Link, Thresholds
from linkwatch.domain import Outcome, ProbeResult, Sample
from probes.context import ProbeContext
from probes.registry import PROBES, ProbeFunction

log = logging.getLogger(__name__)

Sink = Callable[[Sample], Awaitable[None]]

# A run may overrun its own timeout by this much before the scheduler calls it stuck.
_DEADLINE_SLACK = timedelta(seconds=1)


def apply_thresholds(result: ProbeResult, thresholds: Thresholds) -> ProbeResult:
    """Mark an ``up`` result ``degraded`` when loss or RTT crosses the link's thresholds."""
    if result.outcome is not Outcome.UP:
        return result
    too_lossy = (
        thresholds.loss_pct is not None
        and result.loss_pct is not None
        and result.loss_pct >= thresholds.loss_pct
    )
    too_slow = (
        thresholds.rtt_ms is not None
        and result.rtt_ms is not None
        and result.rtt_ms >= thresholds.rtt_ms
    )
    if not (too_lossy or too_slow):
        return result
    reasons = []
    if too_lossy:
        reasons.append(f"loss {result.loss_pct:.1f}% >= {thresholds.loss_pct}%")
    if too_slow:
        reasons.append(f"rtt {result.rtt_ms:.1f}ms >= {thresholds.rtt_ms}ms")
    return ProbeResult(
        Outcome.DEGRADED,
        rtt_ms=result.rtt_ms,
        rtt_min_ms=result.rtt_min_ms,
        rtt_max_ms=result.rtt_max_ms,
        jitter_ms=result.jitter_ms,
        loss_pct=result.loss_pct,
        error="; ".join(reasons),
        phases_ms=result.phases_ms,
    )


class Scheduler:
    def __init__(
        self,
        links: Sequence[Link],
        sink: Sink,
        ctx: ProbeContext,
        *,
        probes: Mapping[str, ProbeFunction] = PROBES,
        concurrency: int = 512,
        rng: random.Random | None = None,
    ) -> None:
        self._links = links
        self._sink = sink
        self._ctx = ctx
        self._probes = probes
        self._semaphore = asyncio.Semaphore(concurrency)
        self._rng = rng or random.Random()  # noqa: S311 - start offsets, not secrets

    async def run(self, stop: asyncio.Event) -> None:
        """Probe until `stop` is set; a run in flight is finished and its sample delivered."""
        async with asyncio.TaskGroup() as group:
            for link in self._links:
                for spec in link.probes:
                    probe = self._probes.get(spec.kind)
                    if probe is None:
                        log.warning(
                            "probe not run link=%s probe=%s kind=%s reason=unsupported-kind",
                            link.id,
                            spec.id,
                            spec.kind,
                        )
                        continue
                    group.create_task(
                        self._cadence(link, spec, probe, stop), name=f"probe:{link.id}/{spec.id}"
                    )

    async def _cadence(
        self, link: Link, spec: AnyProbe, probe: ProbeFunction, stop: asyncio.Event
    ) -> None:
        interval = spec.interval.total_seconds()
        next_at = time.monotonic() + self._rng.uniform(0, interval)
        while not stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return
                except TimeoutError:
                    pass
            sample = await self.run_once(link, spec, probe)
            await self._sink(sample)
            next_at += interval
            behind = time.monotonic() - next_at
            if behind > 0:
                skipped = int(behind // interval) + 1
                next_at += skipped * interval
                log.warning(
                    "probe behind schedule link=%s probe=%s skipped_runs=%d",
                    link.id,
                    spec.id,
                    skipped,
                )

    async def run_once(self, link: Link, spec: AnyProbe, probe: ProbeFunction) -> Sample:
        """One probe run under the shared semaphore and a hard deadline."""
        budget = spec.max_run_time() + _DEADLINE_SLACK
        async with self._semaphore:
            observed_at = datetime.now(UTC)
            try:
                async with asyncio.timeout(budget.total_seconds()):
                    result = await probe(spec, self._ctx)
            except TimeoutError:
                result = ProbeResult(Outcome.UNKNOWN, error="probe overran its deadline")
        result = apply_thresholds(result, link.thresholds)
        sample = Sample.from_result(link.id, spec.id, observed_at, result)
        log.debug(
            "sample link=%s probe=%s outcome=%s rtt_ms=%s loss_pct=%s error=%s",
            sample.link_id,
            sample.probe_id,
            sample.outcome,
            sample.rtt_ms,
            sample.loss_pct,
            sample.error,
        )
        return sample
