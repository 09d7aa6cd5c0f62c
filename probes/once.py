"""Run every probe of some links once, now: `linkwatch probe --once`.

For an engineer checking a config or a link by hand. Same probe functions, deadlines and
thresholds as the scheduler; nothing is stored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from kernel.config import Link, ProbingConfig
from kernel.domain import Sample
from kernel.formatting import text_table
from probes.context import ProbeContext
from probes.registry import PROBES
from probes.scheduler import Scheduler


async def probe_once(
    links: Sequence[Link], ctx: ProbeContext, limits: ProbingConfig | None = None
) -> list[Sample]:
    """One sample per probe whose kind this version can run, in config order."""
    scheduler = Scheduler(links, _discard, ctx, limits=limits)
    runs = [
        scheduler.run_once(link, spec, PROBES[spec.kind])
        for link in links
        for spec in link.probes
        if spec.kind in PROBES
    ]
    return list(await asyncio.gather(*runs))


async def _discard(sample: Sample) -> None:
    return None


def to_table(samples: Sequence[Sample]) -> str:
    header = ("link", "probe", "outcome", "rtt ms", "loss %", "jitter ms", "error")
    rows = [header] + [
        (
            s.link_id,
            s.probe_id,
            s.outcome.value,
            _num(s.rtt_ms, 3),
            _num(s.loss_pct, 1),
            _num(s.jitter_ms, 3),
            s.error or "",
        )
        for s in samples
    ]
    return text_table(rows)


def to_json(samples: Sequence[Sample]) -> str:
    return json.dumps(
        [
            {
                "link": s.link_id,
                "probe": s.probe_id,
                "observed_at": s.observed_at.isoformat(),
                "outcome": s.outcome.value,
                "rtt_ms": s.rtt_ms,
                "rtt_min_ms": s.rtt_min_ms,
                "rtt_max_ms": s.rtt_max_ms,
                "jitter_ms": s.jitter_ms,
                "loss_pct": s.loss_pct,
                "error": s.error,
                "metrics": dict(s.metrics),
            }
            for s in samples
        ],
        indent=2,
    )


def _num(value: float | None, places: int) -> str:
    return "-" if value is None else f"{value:.{places}f}"
