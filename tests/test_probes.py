"""Probes against real loopback targets, and the scheduler's cadence and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from kernel.config import IcmpProbe, Link, ProbingConfig, TcpProbe, Thresholds
from kernel.domain import Outcome, ProbeResult, Sample
from probes import PROBES, ProbeContext, Scheduler, apply_thresholds, detect_context
from probes.icmp import probe_icmp
from probes.tcp import probe_tcp
from tests.helpers import free_port

CTX = detect_context()


def icmp(host: str, **extra: object) -> IcmpProbe:
    return IcmpProbe.model_validate(
        {
            "id": "icmp",
            "kind": "icmp",
            "host": host,
            "count": 3,
            "spacing": "20ms",
            "timeout": "500ms",
            **extra,
        }
    )


@pytest.mark.skipif(CTX.icmp_privileged is None, reason="no ICMP socket permission here")
async def test_icmp_to_loopback_is_up_with_rtt_and_no_loss() -> None:
    result = await probe_icmp(icmp("127.0.0.7"), CTX)
    assert result.outcome is Outcome.UP
    assert result.loss_pct == 0.0
    assert result.rtt_ms is not None
    assert 0 < result.rtt_ms < 100
    assert result.rtt_min_ms is not None
    assert result.rtt_max_ms is not None
    assert result.rtt_min_ms <= result.rtt_ms <= result.rtt_max_ms
    assert result.jitter_ms is not None


@pytest.mark.skipif(CTX.icmp_privileged is None, reason="no ICMP socket permission here")
async def test_icmp_to_ipv6_loopback_is_up() -> None:
    result = await probe_icmp(icmp("::1"), CTX)
    assert result.outcome is Outcome.UP, result.error


async def test_icmp_without_socket_permission_is_unknown_not_down() -> None:
    ctx = ProbeContext(icmp_privileged=None, icmp_error="no permission for ICMP sockets")
    result = await probe_icmp(icmp("127.0.0.1"), ctx)
    assert result.outcome is Outcome.UNKNOWN
    assert result.error == "no permission for ICMP sockets"


async def test_tcp_to_a_listening_port_is_up_with_connect_time() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        spec = TcpProbe(id="tcp", kind="tcp", host="127.0.0.1", port=port)
        result = await probe_tcp(spec, CTX)
    assert result.outcome is Outcome.UP
    assert result.rtt_ms is not None
    assert result.phases_ms["connect"] == result.rtt_ms


async def test_tcp_to_a_closed_port_is_down_connection_refused() -> None:
    spec = TcpProbe(id="tcp", kind="tcp", host="127.0.0.1", port=free_port())
    result = await probe_tcp(spec, CTX)
    assert result.outcome is Outcome.DOWN
    assert result.error == "connection refused"


@pytest.mark.parametrize(
    ("result", "thresholds", "expected"),
    [
        pytest.param(
            ProbeResult(Outcome.UP, rtt_ms=10, loss_pct=0),
            Thresholds(rtt_ms=40),
            Outcome.UP,
            id="under-rtt",
        ),
        pytest.param(
            ProbeResult(Outcome.UP, rtt_ms=40, loss_pct=0),
            Thresholds(rtt_ms=40),
            Outcome.DEGRADED,
            id="at-rtt",
        ),
        pytest.param(
            ProbeResult(Outcome.UP, rtt_ms=1, loss_pct=20),
            Thresholds(loss_pct=5),
            Outcome.DEGRADED,
            id="lossy",
        ),
        pytest.param(
            ProbeResult(Outcome.DOWN, loss_pct=100),
            Thresholds(loss_pct=5),
            Outcome.DOWN,
            id="down-stays-down",
        ),
        pytest.param(
            ProbeResult(Outcome.UP, rtt_ms=500), Thresholds(), Outcome.UP, id="no-thresholds"
        ),
    ],
)
def test_thresholds_mark_slow_or_lossy_replies_degraded(
    result: ProbeResult, thresholds: Thresholds, expected: Outcome
) -> None:
    link = Link(id="l", customer="c", probes=[icmp("127.0.0.1")], thresholds=thresholds)
    marked = apply_thresholds(result, link, link.probes[0])
    assert marked.outcome is expected
    assert marked.rtt_ms == result.rtt_ms  # the measurement itself is kept


def _link(link_id: str, interval: str, kind: str = "tcp") -> Link:
    probe = {"id": "p", "kind": kind, "host": "127.0.0.1", "interval": interval, "timeout": "50ms"}
    if kind == "tcp":
        probe["port"] = 9
    return Link.model_validate({"id": link_id, "customer": "c", "probes": [probe]})


async def test_scheduler_keeps_a_fixed_cadence_although_runs_take_time() -> None:
    samples: list[tuple[float, Sample]] = []

    async def slow_probe(spec: object, ctx: ProbeContext) -> ProbeResult:
        await asyncio.sleep(0.12)  # a run takes more than half the interval
        return ProbeResult(Outcome.UP, rtt_ms=1.0)

    async def sink(sample: Sample) -> None:
        samples.append((time.monotonic(), sample))

    stop = asyncio.Event()
    scheduler = Scheduler([_link("a", "200ms")], sink, CTX, probes={"tcp": slow_probe})
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(2.1)
    stop.set()
    await task
    starts = [s.observed_at for _, s in samples]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    # Start-to-start stays at the interval; sleeping the interval after each run would
    # give 0.32 s and only about 6 samples.
    assert len(samples) >= 9
    assert all(0.15 < gap < 0.25 for gap in gaps), gaps


async def test_scheduler_stop_lets_a_run_in_flight_deliver_its_sample() -> None:
    delivered: list[Sample] = []
    started = asyncio.Event()

    async def probe(spec: object, ctx: ProbeContext) -> ProbeResult:
        started.set()
        await asyncio.sleep(0.3)
        return ProbeResult(Outcome.DOWN, error="connection refused")

    async def sink(sample: Sample) -> None:
        delivered.append(sample)

    stop = asyncio.Event()
    scheduler = Scheduler([_link("a", "5s")], sink, CTX, probes={"tcp": probe})
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.wait_for(started.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [s.outcome for s in delivered] == [Outcome.DOWN]
    assert delivered[0].link_id == "a"
    assert delivered[0].error == "connection refused"


async def test_scheduler_turns_a_hung_probe_into_unknown_not_a_stall() -> None:
    async def hung(spec: object, ctx: ProbeContext) -> ProbeResult:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    link = _link("a", "2s")
    scheduler = Scheduler([link], lambda s: asyncio.sleep(0), CTX, probes={"tcp": hung})
    sample = await scheduler.run_once(link, link.probes[0], hung)
    assert sample.outcome is Outcome.UNKNOWN
    assert sample.error == "probe overran its deadline"


async def test_scheduler_skips_kinds_it_cannot_run_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = Link.model_validate(
        {
            "id": "a",
            "customer": "c",
            "probes": [{"id": "port", "kind": "snmp", "host": "127.0.0.1:16161", "community": "x"}],
        }
    )
    stop = asyncio.Event()
    stop.set()
    await Scheduler([link], lambda s: asyncio.sleep(0), CTX, probes={}).run(stop)
    assert "probe not run link=a probe=port kind=snmp reason=unsupported-kind" in caplog.text


def test_registry_maps_each_kind_to_its_probe() -> None:
    assert PROBES["icmp"] is probe_icmp
    assert PROBES["tcp"] is probe_tcp


def test_max_run_time_bounds_the_whole_icmp_burst() -> None:
    assert icmp("127.0.0.1").max_run_time() == timedelta(milliseconds=540)


async def test_a_crashing_probe_gives_unknown_samples_and_keeps_its_cadence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    samples: list[Sample] = []

    async def broken(spec: object, ctx: ProbeContext) -> ProbeResult:
        raise KeyError("ifHCInOctets")

    async def sink(sample: Sample) -> None:
        samples.append(sample)

    stop = asyncio.Event()
    task = asyncio.create_task(
        Scheduler([_link("a", "200ms")], sink, CTX, probes={"tcp": broken}).run(stop)
    )
    await asyncio.sleep(0.7)
    stop.set()
    await task
    assert len(samples) >= 2  # the cadence survived the crash
    assert {s.outcome for s in samples} == {Outcome.UNKNOWN}
    assert samples[0].error == "probe crashed: KeyError: 'ifHCInOctets'"
    assert "Traceback" in caplog.text
    assert "probe crashed link=a probe=p kind=tcp" in caplog.text


async def test_scheduler_reports_how_late_runs_start() -> None:
    async def quick(spec: object, ctx: ProbeContext) -> ProbeResult:
        return ProbeResult(Outcome.UP, rtt_ms=1.0)

    stop = asyncio.Event()
    scheduler = Scheduler(
        [_link(f"l{i}", "200ms") for i in range(20)],
        lambda s: asyncio.sleep(0),
        CTX,
        probes={"tcp": quick},
    )
    assert scheduler.lag_stats() is None
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(0.9)
    stop.set()
    await task
    lag = scheduler.lag_stats()
    assert lag is not None
    assert lag.runs >= 60
    assert 0 <= lag.p50_s <= lag.p99_s <= lag.max_s < 0.2  # an idle loop keeps time


async def test_a_reloaded_config_keeps_unchanged_probes_and_restarts_changed_ones() -> None:
    seen: list[tuple[str, float]] = []

    async def probe(spec: object, ctx: ProbeContext) -> ProbeResult:
        return ProbeResult(Outcome.UP, rtt_ms=1.0)

    async def sink(sample: Sample) -> None:
        seen.append((sample.link_id, time.monotonic()))

    stop = asyncio.Event()
    scheduler = Scheduler(
        [_link("kept", "300ms"), _link("changed", "300ms"), _link("removed", "300ms")],
        sink,
        CTX,
        probes={"tcp": probe},
    )
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(0.7)
    kept_task = next(t for t in asyncio.all_tasks() if t.get_name() == "probe:kept/p")
    scheduler.update([_link("kept", "300ms"), _link("changed", "1s"), _link("added", "300ms")])
    await asyncio.sleep(0.05)
    tasks = {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("probe:")}
    assert tasks == {"probe:kept/p", "probe:changed/p", "probe:added/p"}
    assert kept_task in asyncio.all_tasks()  # same task: its cadence continues
    reloaded_at = time.monotonic()
    await asyncio.sleep(1.2)
    stop.set()
    await task
    assert not [t for link, t in seen if link == "removed" and t > reloaded_at]
    assert any(link == "added" for link, _ in seen)


async def test_a_kind_at_its_limit_does_not_hold_up_other_kinds() -> None:
    """Slow HTTP-like runs fill their kind's slots; ICMP runs still start on time."""

    async def slow(spec: object, ctx: ProbeContext) -> ProbeResult:
        await asyncio.sleep(0.4)
        return ProbeResult(Outcome.UP, rtt_ms=1.0)

    async def quick(spec: object, ctx: ProbeContext) -> ProbeResult:
        return ProbeResult(Outcome.UP, rtt_ms=1.0)

    limits = ProbingConfig.model_validate({"concurrency": 50, "concurrency_per_kind": {"tcp": 2}})
    links = [_link(f"t{i}", "500ms") for i in range(10)]
    links += [_link(f"i{i}", "1s", kind="icmp") for i in range(10)]
    stop = asyncio.Event()
    scheduler = Scheduler(
        links, lambda s: asyncio.sleep(0), CTX, probes={"tcp": slow, "icmp": quick}, limits=limits
    )
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(2.0)
    stop.set()
    await task
    tcp, icmp_lag = scheduler.lag_stats("tcp"), scheduler.lag_stats("icmp")
    assert tcp is not None
    assert icmp_lag is not None
    assert scheduler.kinds() == ["icmp", "tcp"]
    # Ten 0.4 s runs per 0.5 s through two slots: TCP falls behind, ICMP does not.
    assert tcp.p99_s > 0.5
    assert icmp_lag.p99_s < 0.1
    overall = scheduler.lag_stats()
    assert overall is not None
    assert overall.runs == tcp.runs + icmp_lag.runs


async def test_icmp_probes_keep_their_schedule_when_every_target_is_down() -> None:
    """A large outage: 12,000 ICMP targets every 3 s, each burst waiting its whole timeout
    (2.8 s with the default count, spacing and timeout), so about 11,200 bursts are due at
    once. Their 20,000 echoes a second fit the engine's rate, raised to 25,000 for them,
    so none may wait for a slot: the ICMP slots follow the engine's capacity (14,000
    bursts at once), not a fixed number (8,192 held a growing backlog here)."""
    in_flight = most = 0

    async def unanswered(spec: object, ctx: ProbeContext) -> ProbeResult:
        nonlocal in_flight, most
        assert isinstance(spec, IcmpProbe)
        in_flight += 1
        most = max(most, in_flight)
        try:
            await asyncio.sleep(spec.max_run_time().total_seconds())
        finally:
            in_flight -= 1
        return ProbeResult(Outcome.DOWN, loss_pct=100.0)

    limits = ProbingConfig.model_validate({"icmp_max_pps": 25_000})
    ctx = detect_context(limits)
    links = [
        Link.model_validate(
            {
                "id": f"l{i}",
                "customer": "c",
                "probes": [{"id": "icmp", "kind": "icmp", "host": "127.0.0.1", "interval": "3s"}],
            }
        )
        for i in range(12_000)
    ]
    scheduler = Scheduler(links, _discard, ctx, probes={"icmp": unanswered}, limits=limits)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(4)  # past the first round, when the bursts due at once peak
    stop.set()
    await task
    # Counted, not timed: every burst due ran at once, none waited for a slot.
    assert most > 11_000, most
    if ctx.icmp_engine is not None:
        assert scheduler.slots["icmp"] == 14_000


async def test_the_overall_limit_bounds_every_kind_together() -> None:
    in_flight = 0
    most = 0

    async def probe(spec: object, ctx: ProbeContext) -> ProbeResult:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return ProbeResult(Outcome.UP, rtt_ms=1.0)

    limits = ProbingConfig.model_validate({"concurrency": 3})
    links = [_link(f"t{i}", "2s") for i in range(5)] + [
        _link(f"i{i}", "2s", kind="icmp") for i in range(5)
    ]
    scheduler = Scheduler(links, _discard, CTX, limits=limits)
    runs = [scheduler.run_once(link, spec, probe) for link in links for spec in link.probes]
    samples = await asyncio.gather(*runs)
    assert [s.outcome for s in samples] == [Outcome.UP] * 10
    assert most == 3


def _socket_fds() -> int:
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd).startswith("socket:")
    return count


@pytest.mark.skipif(CTX.icmp_privileged is None, reason="no ICMP socket permission here")
async def test_closing_the_context_closes_its_shared_sockets() -> None:
    ctx = detect_context()
    before = _socket_fds()
    result = await probe_icmp(icmp("127.0.0.9"), ctx)
    assert result.outcome is Outcome.UP
    assert _socket_fds() == before + 1  # one shared socket, opened on first use
    await ctx.close()
    assert _socket_fds() == before


async def _discard(sample: Sample) -> None:
    return None
