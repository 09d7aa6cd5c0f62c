"""ICMP at ISP scale: the shared-socket engine against fping, in the same run, on the same
loopback targets with the same count, per-target period, send interval and timeout.

    .venv/bin/python -m bench.icmp [--sizes 1000,5000,10000] [--sustain-s 60]

Three parts: (1) paced bursts to N distinct loopback addresses (127.x.y.z), wall time, loss
and CPU per echo for both and the ratio; (2) the ceiling, echoes/s from one process with no
pacing; (3) a sustained run, 20,000 targets every 30 s through `probes.scheduler.Scheduler`,
reporting how late runs start (p99). Needs root (raw sockets, like fping). Sends to
127.0.0.0/8 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from kernel.config import AnyProbe, IcmpProbe, Link, ProbingConfig
from kernel.domain import Outcome, ProbeResult, Sample
from probes.context import ProbeContext
from probes.icmp import probe_icmp
from probes.icmp_engine import IcmpEngine
from probes.scheduler import Scheduler

COUNT = 5


@dataclass(frozen=True)
class Run:
    wall_s: float
    echoes: int
    lost: int
    cpu_s: float

    @property
    def loss_pct(self) -> float:
        return 100.0 * self.lost / self.echoes

    @property
    def cpu_us_per_echo(self) -> float:
        return self.cpu_s / self.echoes * 1e6


def loopback_targets(count: int) -> list[str]:
    """Distinct addresses in 127.0.0.0/8 (every one answers), skipping .0 and .255."""
    targets: list[str] = []
    n = 0
    while len(targets) < count:
        n += 1
        a, b, c = 10 + (n >> 16), (n >> 8) & 0xFF, n & 0xFF
        if c not in (0, 255):
            targets.append(f"127.{a}.{b}.{c}")
    return targets


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_fping(
    targets: Sequence[str], period_ms: float, interval_ms: float, timeout_ms: float
) -> Run:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as handle:
        handle.write("\n".join(targets) + "\n")
        handle.flush()
        command = ["fping", "-C", str(COUNT), "-p", f"{period_ms:g}", "-i", f"{interval_ms:g}"]
        command += ["-t", f"{timeout_ms:g}", "-q", "-f", handle.name]
        cpu0, began = cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - began
        used = cpu(resource.RUSAGE_CHILDREN) - cpu0
    results = [
        line.split(" : ", 1)[1].split() for line in done.stderr.splitlines() if " : " in line
    ]
    if len(results) != len(targets):
        raise RuntimeError(f"fping reported {len(results)} of {len(targets)}: {done.stderr[-500:]}")
    lost = sum(value == "-" for values in results for value in values)
    return Run(wall, len(targets) * COUNT, lost, used)


async def run_engine(
    targets: Sequence[str],
    spacing_ms: float,
    max_rate_pps: float | None,
    timeout_ms: float,
) -> tuple[Run, IcmpEngine]:
    engine = IcmpEngine(privileged=True, max_rate_pps=max_rate_pps)
    ctx = ProbeContext(icmp_privileged=True, icmp_engine=engine)
    spec = {
        "id": "icmp",
        "kind": "icmp",
        "count": COUNT,
        "spacing": f"{spacing_ms:g}ms" if spacing_ms else "0.001ms",
        "timeout": f"{timeout_ms:g}ms",
    }
    specs = [IcmpProbe.model_validate({**spec, "host": host}) for host in targets]
    await probe_icmp(IcmpProbe.model_validate({**spec, "host": "127.0.0.1"}), ctx)  # sockets
    cpu0, began = cpu(resource.RUSAGE_SELF), time.perf_counter()
    results = await asyncio.gather(*(probe_icmp(s, ctx) for s in specs))
    wall = time.perf_counter() - began
    used = cpu(resource.RUSAGE_SELF) - cpu0
    lost = sum(_lost(r) for r in results)
    engine.close()
    return Run(wall, len(targets) * COUNT, lost, used), engine


def _lost(result: ProbeResult) -> int:
    return round((result.loss_pct if result.loss_pct is not None else 100.0) * COUNT / 100)


class _RecordingRandom(random.Random):
    """Start offsets as the scheduler draws them, to know when each run was due."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.first_due: list[float] = []

    def uniform(self, a: float, b: float) -> float:
        value = super().uniform(a, b)
        self.first_due.append(time.monotonic() + value)
        return value


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.99 * (len(ordered) - 1))] if ordered else float("nan")


async def sustained(
    targets: int, interval_s: float, seconds: float, icmp_slots: int | None
) -> dict[str, float]:
    """Every target every `interval_s` through the Scheduler; start lag and loss. Start lag
    is reported for the first round (all cadences starting at once) and the rounds after."""
    hosts = loopback_targets(targets)
    links = [
        Link.model_validate(
            {
                "id": f"l{i}",
                "customer": "c",
                "probes": [
                    {"id": "icmp", "kind": "icmp", "host": host, "interval": f"{interval_s:g}s"}
                ],
            }
        )
        for i, host in enumerate(hosts)
    ]
    index = {host: i for i, host in enumerate(hosts)}
    engine = IcmpEngine(privileged=True, max_rate_pps=ProbingConfig().icmp_max_pps)
    ctx = ProbeContext(icmp_privileged=True, icmp_engine=engine)
    rng = _RecordingRandom(7)
    runs = [0] * targets
    first_round: list[float] = []
    later_rounds: list[float] = []

    async def timed_icmp(spec: AnyProbe, ctx: ProbeContext) -> ProbeResult:
        assert isinstance(spec, IcmpProbe)
        i = index[spec.host]
        due = rng.first_due[i] + runs[i] * interval_s
        lags = later_rounds if runs[i] else first_round
        runs[i] += 1
        lags.append(max(0.0, time.monotonic() - due))  # wake-up plus semaphore wait
        return await probe_icmp(spec, ctx)

    # Counted, not kept: in the daemon samples leave for the database, and a list of every
    # sample would give the garbage collector work that the daemon does not have.
    outcomes: Counter[Outcome] = Counter()
    lost = 0

    async def sink(sample: Sample) -> None:
        nonlocal lost
        outcomes[sample.outcome] += 1
        lost += round((sample.loss_pct if sample.loss_pct is not None else 100.0) * COUNT / 100)

    limits = ProbingConfig.model_validate({"concurrency_per_kind": {"icmp": icmp_slots}})
    scheduler = Scheduler(links, sink, ctx, probes={"icmp": timed_icmp}, rng=rng, limits=limits)
    stop = asyncio.Event()
    cpu0, began = cpu(resource.RUSAGE_SELF), time.perf_counter()
    task = asyncio.create_task(scheduler.run(stop), name="bench-scheduler")
    await asyncio.sleep(seconds)
    stop.set()
    await task
    wall = time.perf_counter() - began
    used = cpu(resource.RUSAGE_SELF) - cpu0
    lag = scheduler.lag_stats()
    engine.close()
    total = outcomes.total()
    return {
        "slots": scheduler.slots["icmp"],
        "samples": total,
        "up": outcomes[Outcome.UP],
        "loss_pct": 100.0 * lost / max(1, total * COUNT),
        "lag_p99_s": lag.p99_s if lag else float("nan"),
        "lag_max_s": lag.max_s if lag else float("nan"),
        "start_first_p99_s": p99(first_round),
        "start_later_p99_s": p99(later_rounds),
        "cpu_share": used / wall,
        "kernel_drops": engine.stats.kernel_drops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument("--period-ms", type=float, default=200.0, help="per-target spacing")
    parser.add_argument("--interval-ms", type=float, default=0.1, help="between any two sends")
    parser.add_argument("--timeout-ms", type=float, default=1000.0)
    parser.add_argument("--ceiling-targets", type=int, default=10_000)
    parser.add_argument("--sustain-targets", type=int, default=20_000)
    parser.add_argument("--sustain-interval-s", type=float, default=30.0)
    parser.add_argument("--sustain-s", type=float, default=60.0)
    parser.add_argument(
        "--sustain-icmp-slots",
        default="512,8192,engine",
        help="probing.concurrency_per_kind.icmp values to run; engine: unset, the default,"
        " sized from the ICMP engine",
    )
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("fping") is None:
        sys.exit("needs root (raw ICMP sockets, as fping uses) and fping (apt install fping)")

    rate = 1000.0 / args.interval_ms
    print(
        f"cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.2f}; "
        f"{COUNT} echoes per target, period {args.period_ms:g} ms, send interval "
        f"{args.interval_ms:g} ms ({rate:,.0f}/s), timeout {args.timeout_ms:g} ms"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        targets = loopback_targets(size)
        theirs = run_fping(targets, args.period_ms, args.interval_ms, args.timeout_ms)
        ours, engine = asyncio.run(run_engine(targets, args.period_ms, rate, args.timeout_ms))
        for name, r in (("fping (anchor)", theirs), ("linkwatch", ours)):
            print(
                f"{size:>6,} targets {name:<15} wall {r.wall_s:6.2f} s  loss {r.loss_pct:5.2f} %"
                f"  CPU {r.cpu_us_per_echo:6.1f} µs/echo"
            )
        print(
            f"{'':>14} ratio linkwatch/fping: wall {ours.wall_s / theirs.wall_s:.2f}x, "
            f"CPU/echo {ours.cpu_us_per_echo / theirs.cpu_us_per_echo:.2f}x; "
            f"kernel drops {engine.stats.kernel_drops}, late {engine.stats.late}"
        )

    targets = loopback_targets(args.ceiling_targets)
    theirs = run_fping(targets, 1, 0, args.timeout_ms)
    ours, engine = asyncio.run(run_engine(targets, 0, None, args.timeout_ms))
    for name, r in (("fping -i 0 -p 1", theirs), ("linkwatch", ours)):
        print(
            f"ceiling {name:<16} {r.echoes / r.wall_s:>9,.0f} echoes/s  loss {r.loss_pct:5.2f} %"
            f"  CPU {r.cpu_us_per_echo:5.1f} µs/echo"
        )
    print(f"ceiling ratio linkwatch/fping: {theirs.wall_s / ours.wall_s:.2f}x the echo rate")

    for choice in args.sustain_icmp_slots.split(","):
        slots = None if choice == "engine" else int(choice)
        result = asyncio.run(
            sustained(args.sustain_targets, args.sustain_interval_s, args.sustain_s, slots)
        )
        sized = f"{result['slots']:,.0f}" + (" (sized from the engine)" if slots is None else "")
        print(
            f"sustained {args.sustain_targets:,} targets every {args.sustain_interval_s:g} s for "
            f"{args.sustain_s:g} s, ICMP slots {sized}: "
            f"{result['samples']:,.0f} samples, {result['up']:,.0f} up, "
            f"loss {result['loss_pct']:.3f} %, kernel drops {result['kernel_drops']:.0f}, "
            f"process CPU {result['cpu_share'] * 100:.1f} % of one core"
        )
        print(
            f"  scheduler lag_stats p99 {result['lag_p99_s'] * 1000:.1f} ms (max "
            f"{result['lag_max_s'] * 1000:.1f} ms); probe start incl. semaphore wait p99: "
            f"first round {result['start_first_p99_s'] * 1000:.1f} ms, later rounds "
            f"{result['start_later_p99_s'] * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
