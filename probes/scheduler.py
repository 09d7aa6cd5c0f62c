"""Runs every configured probe on its own fixed cadence and hands samples to a sink.

Each probe starts at a random offset within its interval (so a thousand probes with the
same interval do not fire at once) and then keeps a fixed-deadline schedule,
``next_at += interval``, so slow runs never stretch the cadence. One semaphore per probe
kind bounds each kind by what its runs cost (an ICMP burst is a few entries in the shared
engine, an HTTP run holds a socket), so that thousands of cheap bursts are not queued
behind a limit sized for sockets, and one may bound every run together. Unless configured,
the ICMP slots are what the engine carries at once at its echo rate (`icmp_slots`), so
ICMP runs wait for a slot exactly when the engine could not send their echoes sooner
anyway, and that wait shows as lag. The scheduler never touches the database: the sink
does.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from kernel.config import (
    RESPONSE_TIME_KINDS,
    AnyProbe,
    HttpProbe,
    IcmpProbe,
    Link,
    ProbingConfig,
)
from kernel.domain import Outcome, ProbeResult, Sample
from probes.context import ProbeContext
from probes.registry import PROBES, ProbeFunction

log = logging.getLogger(__name__)

Sink = Callable[[Sample], Awaitable[None]]

# A run may overrun its own timeout by this much before the scheduler calls it stuck.
_DEADLINE_SLACK = timedelta(seconds=1)


def apply_thresholds(result: ProbeResult, link: Link, spec: AnyProbe) -> ProbeResult:
    """Mark an available result ``degraded`` when it crosses its thresholds: the link's
    loss and RTT for kinds that measure the network, the response time (the probe's own,
    else the link's) for HTTP, whose rtt is the whole response. A result already degraded
    (an HTTP certificate close to expiry) keeps its reason and adds these."""
    if not result.outcome.available:
        return result
    reasons = []
    if spec.kind in RESPONSE_TIME_KINDS:
        assert isinstance(spec, HttpProbe)
        limit = link.response_ms(spec)
        if limit is not None and result.rtt_ms is not None and result.rtt_ms >= limit:
            reasons.append(f"response {result.rtt_ms:.1f}ms >= {limit:g}ms")
    else:
        thresholds = link.thresholds
        if (
            thresholds.loss_pct is not None
            and result.loss_pct is not None
            and result.loss_pct >= thresholds.loss_pct
        ):
            reasons.append(f"loss {result.loss_pct:.1f}% >= {thresholds.loss_pct}%")
        if (
            thresholds.rtt_ms is not None
            and result.rtt_ms is not None
            and result.rtt_ms >= thresholds.rtt_ms
        ):
            reasons.append(f"rtt {result.rtt_ms:.1f}ms >= {thresholds.rtt_ms}ms")
    if not reasons:
        return result
    if result.error is not None:
        reasons.insert(0, result.error)
    return replace(result, outcome=Outcome.DEGRADED, error="; ".join(reasons))


@dataclass(frozen=True, slots=True)
class LagStats:
    """How late runs started against their fixed schedule, over the recent runs."""

    runs: int
    p50_s: float
    p99_s: float
    max_s: float


class Scheduler:
    """Probes every configured probe on its own fixed cadence until stopped.

    `update(links)` applies a new configuration while running: probes whose spec and
    link thresholds are unchanged keep their tasks and cadence; changed ones restart;
    removed ones finish a run in flight and stop.
    """

    def __init__(
        self,
        links: Sequence[Link],
        sink: Sink,
        ctx: ProbeContext,
        *,
        probes: Mapping[str, ProbeFunction] = PROBES,
        limits: ProbingConfig | None = None,
        rng: random.Random | None = None,
        lag_window: int = 10_000,
    ) -> None:
        self._limits = limits or ProbingConfig()
        self._links = list(links)
        self._sink = sink
        self._ctx = ctx
        self._probes = probes
        self.slots: dict[str, int] = {}  # per kind, and "all"
        # Kinds whose slots follow the engine rather than the config.
        self.sized_from_engine = frozenset(
            kind for kind, n in self._limits.concurrency_per_kind.model_dump().items() if n is None
        )
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._size_slots(self._links)
        self._rng = rng or random.Random()  # noqa: S311 - start offsets, not secrets
        self._lag_window = lag_window
        self._lags: dict[str, deque[float]] = {}
        self._running: dict[tuple[str, str], _Running] = {}
        self._group: asyncio.TaskGroup | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Probe until `stop` is set; runs in flight finish and deliver their samples."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._apply(self._links)
            await stop.wait()
            for running in self._running.values():
                running.retire()
        self._group = None
        self._running.clear()

    def update(self, links: Sequence[Link]) -> None:
        """Apply a new (already validated) configuration to the running scheduler."""
        self._links = list(links)
        self._size_slots(self._links)
        if self._group is not None:
            self._apply(self._links)

    def _size_slots(self, links: Sequence[Link]) -> None:
        """The limits for `links`: configured ones as they are, the ICMP slots (unless
        configured) from the engine, every run together (unless configured) bounded only
        by the kinds. A limit that changes gets a new semaphore; runs holding the old one
        release it as they finish."""
        configured: dict[str, int | None] = self._limits.concurrency_per_kind.model_dump()
        # Only the ICMP limit may be unset.
        slots = {
            kind: icmp_slots(links, self._ctx) if n is None else n for kind, n in configured.items()
        }
        slots["all"] = self._limits.concurrency or sum(slots.values())
        for kind, n in slots.items():
            if self.slots.get(kind) != n:
                self._semaphores[kind] = asyncio.Semaphore(n)
        if slots != self.slots:
            log.info("probe slots %s", " ".join(f"{kind}={n}" for kind, n in slots.items()))
        self.slots = slots

    def lag_stats(self, kind: str | None = None) -> LagStats | None:
        """How late the recent runs started, of one probe kind or of all of them."""
        if kind is None:
            ordered = sorted(lag for lags in self._lags.values() for lag in lags)
        else:
            ordered = sorted(self._lags.get(kind, ()))
        if not ordered:
            return None
        return LagStats(
            runs=len(ordered),
            p50_s=ordered[len(ordered) // 2],
            p99_s=ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            max_s=ordered[-1],
        )

    def kinds(self) -> list[str]:
        """The probe kinds that have run, for per-kind lag figures."""
        return sorted(self._lags)

    def _apply(self, links: Sequence[Link]) -> None:
        assert self._group is not None
        wanted = {(link.id, spec.id): (link, spec) for link in links for spec in link.probes}
        for key, running in list(self._running.items()):
            link, spec = wanted.get(key, (None, None))
            if link is None or spec != running.spec or link.thresholds != running.link.thresholds:
                running.retire()
                del self._running[key]
        for key, (link, spec) in wanted.items():
            if key in self._running:
                continue
            probe = self._probes.get(spec.kind)
            if probe is None:
                log.warning(
                    "probe not run link=%s probe=%s kind=%s reason=unsupported-kind",
                    link.id,
                    spec.id,
                    spec.kind,
                )
                continue
            running = _Running(link, spec)
            self._running[key] = running
            self._group.create_task(
                self._cadence(running, probe), name=f"probe:{link.id}/{spec.id}"
            )

    async def _cadence(self, running: _Running, probe: ProbeFunction) -> None:
        link, spec = running.link, running.spec
        loop = asyncio.get_running_loop()
        interval = spec.interval.total_seconds()
        next_at = loop.time() + self._rng.uniform(0, interval)
        while not running.retired:
            if next_at > loop.time() and not await running.sleep_until(next_at, loop):
                return  # retired while waiting
            sample = await self.run_once(link, spec, probe, due=next_at)
            await self._sink(sample)
            next_at += interval
            behind = loop.time() - next_at
            if behind > 0:
                skipped = int(behind // interval) + 1
                next_at += skipped * interval
                log.warning(
                    "probe behind schedule link=%s probe=%s skipped_runs=%d",
                    link.id,
                    spec.id,
                    skipped,
                )

    async def run_once(
        self, link: Link, spec: AnyProbe, probe: ProbeFunction, *, due: float | None = None
    ) -> Sample:
        """One probe run under the concurrency limits and a hard deadline. A probe that
        crashes yields an `unknown` sample (and a logged traceback), not a dead cadence."""
        budget = spec.max_run_time() + _DEADLINE_SLACK
        # The kind's slot first: a run waiting for its kind holds no slot another kind
        # could use.
        async with self._semaphores[spec.kind], self._semaphores["all"]:
            if due is not None:
                # Lag counts from the scheduled time to the real start, semaphore waits
                # included: that is how late the measurement is.
                lags = self._lags.get(spec.kind)
                if lags is None:
                    lags = self._lags[spec.kind] = deque(maxlen=self._lag_window)
                lags.append(max(0.0, asyncio.get_running_loop().time() - due))
            observed_at = datetime.now(UTC)
            try:
                async with asyncio.timeout(budget.total_seconds()):
                    result = await probe(spec, self._ctx)
            except TimeoutError:
                result = ProbeResult(Outcome.UNKNOWN, error="probe overran its deadline")
            except Exception as exc:
                log.exception("probe crashed link=%s probe=%s kind=%s", link.id, spec.id, spec.kind)
                result = ProbeResult(
                    Outcome.UNKNOWN, error=f"probe crashed: {type(exc).__name__}: {exc}"
                )
        result = apply_thresholds(result, link, spec)
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


def icmp_slots(links: Sequence[Link], ctx: ProbeContext) -> int:
    """ICMP runs to let in flight at once: as many bursts of the configured ICMP probes as
    the context's engine carries at once (`IcmpEngine.bursts_at_once`); every ICMP probe
    at once when the engine sets no bound, or there is no engine (its runs end at once,
    unknown)."""
    shapes = [
        (probe.count, probe.max_run_time().total_seconds())
        for link in links
        for probe in link.probes
        if isinstance(probe, IcmpProbe)
    ]
    engine = ctx.icmp_engine
    bound = engine.bursts_at_once(shapes) if engine is not None else None
    return bound if bound is not None else max(1, len(shapes))


@dataclass(slots=True)
class _Running:
    """One probe's cadence. Its wait between runs is a bare future and timer (as
    asyncio.sleep uses) rather than a task per wait: with 20,000 probes, the tasks that
    `wait_for(event.wait(), delay)` creates cost the loop enough to make runs late."""

    link: Link
    spec: AnyProbe
    retired: bool = False
    _wake: asyncio.Future[None] | None = None

    def retire(self) -> None:
        """Stop after the run in flight, or at once if waiting for the next run."""
        self.retired = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def sleep_until(self, when: float, loop: asyncio.AbstractEventLoop) -> bool:
        """Wait until loop time `when`; False if retired meanwhile."""
        wake = self._wake = loop.create_future()
        timer = loop.call_at(when, _wake_up, wake)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None
        return not self.retired


def _wake_up(wake: asyncio.Future[None]) -> None:
    if not wake.done():
        wake.set_result(None)
