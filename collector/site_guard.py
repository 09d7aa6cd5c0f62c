"""The site guard: while the monitor's canaries fail, its probes' failures are unknown.

Every probe's sample passes through the guard on its way to the pipeline. A sample that
is not `down` passes at once. A `down` sample taken at t waits until each canary has
run once at or after t (at most a canary's interval and run time, plus a second), then
is judged: the site was blind at t when at least `blind_when` canaries failed (down or
unknown) in their run just before t, or in their run just after it. A blind site's down
sample is stored as `unknown` ("monitor blind: ...", with what the probe saw), since the
monitor, not the customer's link, could not be seen through; otherwise it is stored as
it was. A canary that has not run by then counts as failing: a monitor that cannot run
its canaries cannot vouch for what it saw either. Without canaries nothing waits. A
probe's samples reach the pipeline in the order they were taken: one that comes while
an earlier down sample of its probe waits, waits behind it.

Canary results are kept for a few of their intervals only, so memory is bounded by the
canaries and the down samples of that span. The guard also tells whether the site is
blind now and since when (`status`), and calls `on_change` at each change, for the
record operations see. It reads no clock of its own but `clock`, and writes nothing
but to `sink`.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kernel.config import SiteConfig
from kernel.domain import Outcome, Sample

log = logging.getLogger(__name__)

Sink = Callable[[Sample], Awaitable[None]]

# Beyond a canary's own interval and run time, how long a held sample waits for it.
GRACE = timedelta(seconds=1)
# Canary results kept, in multiples of the longest wait: enough to judge any held sample.
KEEP = 3


@dataclass(frozen=True, slots=True)
class CanaryResult:
    canary_id: str
    observed_at: datetime
    failed: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class SiteStatus:
    """The site as its canaries see it now."""

    site_id: str
    blind: bool
    since: datetime | None  # when the present state began (None: no canary has run yet)
    canaries: tuple[CanaryResult, ...]  # each canary's latest result, in config order
    failing: int  # canaries whose latest result failed
    threshold: int  # failing canaries from which the site is blind (0: no canaries)

    @property
    def reason(self) -> str:
        failed = [c for c in self.canaries if c.failed]
        detail = "; ".join(f"{c.canary_id}: {c.error or 'failed'}" for c in failed)
        return f"{self.failing} of {len(self.canaries)} canaries failing" + (
            f" ({detail})" if detail else ""
        )


async def wait_any(events: tuple[asyncio.Event, ...], within_s: float | None = None) -> None:
    """Until one of `events` is set, or `within_s` seconds (None: no limit) have passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SiteGuard:
    def __init__(
        self,
        site: SiteConfig,
        sink: Sink,
        *,
        clock: Callable[[], datetime] = _utcnow,
        on_change: Callable[[SiteStatus], Awaitable[None]] | None = None,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._on_change = on_change
        # Per probe, in the order taken: (judge by, sample); a probe's samples reach the
        # pipeline in that order, so one behind a held down sample waits with it.
        self._held: dict[tuple[str, str], deque[tuple[datetime, Sample]]] = {}
        self._wake = asyncio.Event()
        self._history: dict[str, list[CanaryResult]] = {}
        self._blind = False
        self._since: datetime | None = None
        self.judged_blind = 0  # down samples stored as unknown
        self.update(site)

    def update(self, site: SiteConfig) -> None:
        """Take a new (validated) site config; canaries no longer configured are forgotten."""
        self._site = site
        self._ids = [c.id for c in site.canaries]
        self._history = {i: self._history.get(i, []) for i in self._ids}
        waits = [c.interval + c.max_run_time() for c in site.canaries]
        self._wait = max(waits, default=timedelta(0)) + GRACE
        self._wake.set()

    # --- what goes in ---------------------------------------------------------------

    async def canary(self, sample: Sample) -> None:
        """A canary's result (the canary scheduler's sink)."""
        if sample.probe_id not in self._history:
            return
        failed = sample.outcome in (Outcome.DOWN, Outcome.UNKNOWN)
        results = self._history[sample.probe_id]
        result = CanaryResult(sample.probe_id, sample.observed_at, failed, sample.error)
        bisect.insort(results, result, key=lambda r: r.observed_at)
        horizon = sample.observed_at - KEEP * self._wait
        while len(results) > 2 and results[1].observed_at < horizon:
            results.pop(0)
        await self._note_status(sample.observed_at)
        self._wake.set()

    async def submit(self, sample: Sample) -> None:
        """A probe's sample (the probe scheduler's sink): on to the pipeline, a down one
        once it is judged."""
        key = (sample.link_id, sample.probe_id)
        held = self._held.get(key)
        if held is None and (sample.outcome is not Outcome.DOWN or self._site.blind_threshold == 0):
            await self._sink(sample)
            return
        self._held.setdefault(key, deque()).append((sample.observed_at + self._wait, sample))
        self._wake.set()

    # --- judging ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Release held samples as they are judged; on stop, judge and release the rest
        with what is known (a canary that has not run counts as failing)."""
        while not stop.is_set():
            await self._release(final=False)
            self._wake.clear()
            await wait_any((self._wake, stop), self._next_due())
        await self._release(final=True)

    def _next_due(self) -> float | None:
        if not self._held:
            return None
        due = min(held[0][0] for held in self._held.values())
        return max(0.0, (due - self._clock()).total_seconds())

    async def _release(self, *, final: bool) -> None:
        now = self._clock()
        for key in list(self._held):
            held = self._held[key]
            while held:
                due, sample = held[0]
                if sample.outcome is Outcome.DOWN:
                    ready = final or due <= now or self._all_ran_after(sample.observed_at)
                    if not ready:
                        break
                    sample = self._judged(sample)
                held.popleft()
                await self._sink(sample)
            if not held:
                del self._held[key]

    def _all_ran_after(self, moment: datetime) -> bool:
        return all(
            results and results[-1].observed_at >= moment for results in self._history.values()
        )

    def _judged(self, sample: Sample) -> Sample:
        at = sample.observed_at
        before: list[CanaryResult] = []
        after: list[CanaryResult] = []
        for canary_id, results in self._history.items():
            index = bisect.bisect_left(results, at, key=lambda r: r.observed_at)
            if index < len(results):
                after.append(results[index])
            else:
                after.append(CanaryResult(canary_id, at, True, "no run since"))
            if index > 0:
                before.append(results[index - 1])
        threshold = self._site.blind_threshold
        for side in (before, after):
            failing = [r for r in side if r.failed]
            if len(failing) >= threshold:
                self.judged_blind += 1
                seen = "; ".join(f"{r.canary_id}: {r.error or 'failed'}" for r in failing)
                return dataclasses.replace(
                    sample,
                    outcome=Outcome.UNKNOWN,
                    rtt_ms=None,
                    rtt_min_ms=None,
                    rtt_max_ms=None,
                    jitter_ms=None,
                    loss_pct=None,
                    error=(
                        f"monitor blind: {len(failing)} of {len(side)} canaries failing "
                        f"({seen}); the probe saw: {sample.error or 'down'}"
                    ),
                )
        return sample

    # --- the site's state -------------------------------------------------------------

    def status(self) -> SiteStatus:
        latest = tuple(self._history[i][-1] for i in self._ids if self._history[i])
        failing = sum(r.failed for r in latest)
        return SiteStatus(
            self._site.id, self._blind, self._since, latest, failing, self._site.blind_threshold
        )

    async def _note_status(self, at: datetime) -> None:
        status = self.status()
        blind = status.threshold > 0 and status.failing >= status.threshold
        if self._since is not None and blind == self._blind:
            return
        self._blind, self._since = blind, at
        status = dataclasses.replace(status, blind=blind, since=at)
        if blind:
            log.warning("site blind site=%s reason=%s", status.site_id, status.reason)
        else:
            log.info("site sees site=%s canaries=%d", status.site_id, len(status.canaries))
        if self._on_change is not None:
            await self._on_change(status)
