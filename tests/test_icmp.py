"""The ICMP probe and its shared engine against real hosts: loopback, and test hosts in
network namespaces that these tests create and remove themselves.

No traffic leaves loopback or the tests' own veth pairs: namespace subnets are picked at
random inside 10.254.0.0/16 and fd6c::/16, checked against every address and route on
the machine first, and exist only on both ends of a veth pair this file creates.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from kernel.config import IcmpProbe
from kernel.domain import Outcome, ProbeResult
from probes import ProbeContext, detect_context
from probes.icmp import probe_icmp, summarize
from probes.icmp_engine import BurstResult, IcmpEngine
from tests.helpers import REPO
from tests.netns import NamespaceHost

CTX = detect_context()
needs_icmp = pytest.mark.skipif(CTX.icmp_privileged is None, reason="no ICMP socket permission")
PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
DROP_NET_RAW = ["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw"]


def icmp(host: str, **extra: object) -> IcmpProbe:
    return IcmpProbe.model_validate(
        {
            "id": "icmp",
            "kind": "icmp",
            "host": host,
            "count": 5,
            "spacing": "20ms",
            "timeout": "500ms",
            **extra,
        }
    )


def fresh_context(
    privileged: bool | None = None, clock: Callable[[], int] = time.perf_counter_ns
) -> ProbeContext:
    """A context with an engine of its own, so its counters describe one test only."""
    chosen = CTX.icmp_privileged if privileged is None else privileged
    engine = IcmpEngine(privileged=bool(chosen), clock=clock)
    return ProbeContext(icmp_privileged=chosen, icmp_engine=engine)


class EngineClock:
    """Monotonic nanoseconds for an engine under test: still until the test moves it or
    lets it run, so what the engine does at a time cannot depend on how busy the machine
    is. (The engine's timers still wait in real time, then look at this clock.)"""

    def __init__(self) -> None:
        self._at = time.perf_counter_ns()
        self._running_since: int | None = None

    def __call__(self) -> int:
        if self._running_since is None:
            return self._at
        return self._at + time.perf_counter_ns() - self._running_since

    def advance(self, seconds: float) -> None:
        assert self._running_since is None, "a running clock is not moved by hand"
        self._at += round(seconds * 1e9)

    def run(self) -> None:
        """From now on, move with real time."""
        self._running_since = time.perf_counter_ns()


async def until(what: str, check: Callable[[], bool], within_s: float = 10.0) -> None:
    """Wait for `check` to hold; the bound only stops a broken engine from hanging."""
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


def assert_clean_up(result: ProbeResult) -> None:
    assert result.outcome is Outcome.UP, result.error
    assert result.loss_pct == 0.0
    assert result.rtt_min_ms is not None
    assert result.rtt_max_ms is not None
    assert result.rtt_ms is not None
    assert 0 < result.rtt_min_ms <= result.rtt_ms <= result.rtt_max_ms < 100
    assert result.jitter_ms is not None


# --- loopback ------------------------------------------------------------------------


@needs_icmp
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
async def test_loopback_burst_is_up_with_exactly_no_loss(host: str) -> None:
    ctx = fresh_context()
    assert_clean_up(await probe_icmp(icmp(host), ctx))
    assert ctx.icmp_engine is not None
    stats = ctx.icmp_engine.stats
    assert (stats.sent, stats.replies, stats.late, stats.kernel_drops) == (5, 5, 0, 0)


@needs_icmp
async def test_burst_is_spaced_and_returns_when_the_last_reply_arrives() -> None:
    """On the engine's clock, moved only by the test: each echo waits its 50 ms however
    long the event loop runs meanwhile, and the burst returns with its last reply while
    its 2 s timeout is still far off."""
    clock = EngineClock()
    ctx = fresh_context(clock=clock)
    engine = ctx.icmp_engine
    assert engine is not None
    clock.advance(0.001)  # enough time for the engine's rate limit to let a first echo out
    burst = asyncio.create_task(probe_icmp(icmp("127.0.0.2", spacing="50ms", timeout="2s"), ctx))
    for sent in range(1, 5):
        await until(f"reply {sent}", lambda n=sent: engine.stats.replies == n)
        clock.advance(0.049)
        await asyncio.sleep(0.06)  # the engine's timer for the next echo has had its turn
        assert engine.stats.sent == sent, "an echo went out less than 50 ms after the last"
        clock.advance(0.001)
    # Four gaps of 50 ms and no more: waiting out the 2 s timeout would never end here.
    result = await asyncio.wait_for(burst, 10)
    assert result.outcome is Outcome.UP
    assert (engine.stats.sent, engine.stats.replies, engine.stats.late) == (5, 5, 0)
    engine.close()


@needs_icmp
async def test_a_thousand_concurrent_loopback_targets_lose_nothing() -> None:
    ctx = fresh_context()
    hosts = [f"127.1.{i // 250}.{i % 250 + 1}" for i in range(1000)]
    results = await asyncio.gather(
        *(probe_icmp(icmp(host, spacing="50ms", timeout="2s"), ctx) for host in hosts)
    )
    assert [r.outcome for r in results] == [Outcome.UP] * 1000
    assert {r.loss_pct for r in results} == {0.0}
    assert ctx.icmp_engine is not None
    stats = ctx.icmp_engine.stats
    assert (stats.sent, stats.replies, stats.late, stats.kernel_drops) == (5000, 5000, 0, 0)
    assert ctx.icmp_engine.outstanding == 0


@needs_icmp
async def test_a_cancelled_burst_stops_sending_and_the_engine_carries_on() -> None:
    clock = EngineClock()
    ctx = fresh_context(clock=clock)
    engine = ctx.icmp_engine
    assert engine is not None
    clock.advance(0.001)  # enough time for the engine's rate limit to let a first echo out
    task = asyncio.create_task(probe_icmp(icmp("127.0.0.3", spacing="200ms"), ctx))
    await until("the first echo", lambda: engine.stats.sent == 1)  # four are queued
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    clock.advance(1.0)  # every queued echo of the cancelled burst is due now
    await asyncio.sleep(0.5)
    assert engine.stats.sent == 1
    clock.run()
    # The engine's next send turn comes up with the cancelled echoes first in its queue.
    assert_clean_up(await probe_icmp(icmp("127.0.0.3"), ctx))
    assert engine.stats.sent == 1 + 5


# --- names ---------------------------------------------------------------------------


async def _no_such_name(host: str) -> Sequence[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@needs_icmp
async def test_a_name_the_monitor_cannot_resolve_is_unknown_not_down() -> None:
    ctx = dataclasses.replace(CTX, resolver=_no_such_name)
    result = await probe_icmp(icmp("core-1.example.invalid"), ctx)
    assert result.outcome is Outcome.UNKNOWN
    assert result.loss_pct is None  # no echo was sent: nothing was lost
    assert result.error == "dns: cannot resolve core-1.example.invalid"


@needs_icmp
@pytest.mark.parametrize("address", ["127.0.0.9", "::1"], ids=["ipv4", "ipv6"])
async def test_a_name_is_pinged_at_the_address_it_resolves_to(address: str) -> None:
    asked: list[str] = []

    async def resolver(host: str) -> Sequence[str]:
        asked.append(host)
        return [address]

    ctx = dataclasses.replace(CTX, resolver=resolver)
    assert_clean_up(await probe_icmp(icmp("core-1.example.invalid"), ctx))
    assert asked == ["core-1.example.invalid"]


# --- arithmetic ----------------------------------------------------------------------


def test_summary_counts_loss_and_jitter_over_the_replies_received() -> None:
    result = summarize(BurstResult((1.0, None, 3.0, 2.0)))
    assert result.outcome is Outcome.UP
    assert result.loss_pct == 25.0
    assert (result.rtt_min_ms, result.rtt_ms, result.rtt_max_ms) == (1.0, 2.0, 3.0)
    assert result.jitter_ms == 1.5  # (|1-3| + |3-2|) / 2


def test_summary_of_a_burst_with_no_reply_is_down_naming_the_loss() -> None:
    result = summarize(BurstResult((None,) * 5))
    assert (result.outcome, result.loss_pct) == (Outcome.DOWN, 100.0)
    assert result.error == "no reply (5/5 lost)"


# --- privileges ----------------------------------------------------------------------


@contextlib.contextmanager
def ping_group_range(value: str) -> Iterator[None]:
    """Set net.ipv4.ping_group_range for the block, then put the old value back."""
    if os.geteuid() != 0 or not os.access(PING_GROUP_RANGE, os.W_OK):
        pytest.skip("changing net.ipv4.ping_group_range needs root")
    saved = PING_GROUP_RANGE.read_text().split()
    PING_GROUP_RANGE.write_text(value)
    try:
        yield
    finally:
        PING_GROUP_RANGE.write_text(" ".join(saved))


@pytest.mark.parametrize("host", ["127.0.0.4", "::1"], ids=["ipv4", "ipv6"])
async def test_unprivileged_datagram_sockets_work_when_the_group_may_ping(host: str) -> None:
    gid = os.getgid()
    with ping_group_range(f"{gid} {gid}"):
        ctx = fresh_context(privileged=False)
        assert_clean_up(await probe_icmp(icmp(host), ctx))
        assert ctx.icmp_engine is not None
        ctx.icmp_engine.close()


def test_with_no_icmp_privilege_samples_are_unknown_and_the_log_says_how_to_grant_it() -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    script = (
        "import asyncio, logging\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "from kernel.config import IcmpProbe\n"
        "from probes import detect_context\n"
        "from probes.icmp import probe_icmp\n"
        "ctx = detect_context()\n"
        "spec = IcmpProbe(id='icmp', kind='icmp', host='127.0.0.1')\n"
        "result = asyncio.run(probe_icmp(spec, ctx))\n"
        "print(result.outcome.value, result.error, sep='|')\n"
    )
    # Without CAP_NET_RAW, and with no group allowed datagram ICMP sockets.
    with ping_group_range("1 0"):
        run = subprocess.run(
            [*DROP_NET_RAW, sys.executable, "-c", script],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=False,
        )
    assert run.returncode == 0, run.stderr
    outcome, error = run.stdout.strip().split("|")
    assert outcome == "unknown"
    assert error.startswith("no permission for ICMP sockets")
    guidance = [line for line in run.stderr.splitlines() if "icmp unavailable" in line]
    assert len(guidance) == 1, run.stderr
    assert "setcap cap_net_raw+ep" in guidance[0]
    assert "ping_group_range" in guidance[0]


async def _until_up(spec: IcmpProbe, ctx: ProbeContext, within_s: float = 10.0) -> ProbeResult:
    """Probe until up: a fresh link needs a moment for carrier and neighbour discovery."""
    deadline = time.monotonic() + within_s
    while True:
        result = await probe_icmp(spec, ctx)
        if result.outcome is Outcome.UP or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def test_namespace_host_is_up_then_down_while_its_link_is_down_then_up_again(
    netns_host: NamespaceHost,
) -> None:
    spec = icmp(netns_host.host, timeout="300ms")
    assert (await _until_up(spec, CTX)).outcome is Outcome.UP
    assert_clean_up(await probe_icmp(spec, CTX))

    netns_host.exec("ip", "link", "set", netns_host.veth_inside, "down")
    down = await probe_icmp(spec, CTX)
    assert down.outcome is Outcome.DOWN
    assert down.loss_pct == 100.0
    assert down.error is not None
    assert down.error.startswith("no reply (5/5 lost)")

    netns_host.exec("ip", "link", "set", netns_host.veth_inside, "up")
    assert (await _until_up(spec, CTX)).outcome is Outcome.UP
    assert_clean_up(await probe_icmp(spec, CTX))


async def test_namespace_host_is_up_over_ipv6(netns_host: NamespaceHost) -> None:
    spec = icmp(netns_host.host_v6, timeout="300ms")
    assert (await _until_up(spec, CTX)).outcome is Outcome.UP
    assert_clean_up(await probe_icmp(spec, CTX))


async def test_a_host_that_never_answers_is_down_within_the_run_time(
    netns_host: NamespaceHost,
) -> None:
    spec = icmp(netns_host.host, timeout="300ms")
    assert (await _until_up(spec, CTX)).outcome is Outcome.UP
    # The host is there (its neighbour entry resolves) but ignores every echo request.
    netns_host.exec("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1")
    began = time.perf_counter()
    result = await probe_icmp(spec, CTX)
    elapsed = time.perf_counter() - began
    assert (result.outcome, result.loss_pct) == (Outcome.DOWN, 100.0)
    assert result.error == "no reply (5/5 lost)"
    assert elapsed < spec.max_run_time().total_seconds() + 0.2


async def test_an_address_with_no_host_on_the_subnet_is_down(netns_host: NamespaceHost) -> None:
    result = await probe_icmp(icmp(netns_host.empty, timeout="300ms"), CTX)
    assert (result.outcome, result.loss_pct) == (Outcome.DOWN, 100.0)
    assert result.error is not None
    assert result.error.startswith("no reply (5/5 lost)")


async def test_unprivileged_sockets_reach_a_namespace_host(netns_host: NamespaceHost) -> None:
    gid = os.getgid()
    with ping_group_range(f"{gid} {gid}"):
        ctx = fresh_context(privileged=False)
        spec = icmp(netns_host.host, timeout="300ms")
        assert (await _until_up(spec, ctx)).outcome is Outcome.UP
        assert_clean_up(await probe_icmp(spec, ctx))
        netns_host.exec("sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1")
        silent = await probe_icmp(spec, ctx)
        assert (silent.outcome, silent.loss_pct) == (Outcome.DOWN, 100.0)
        assert ctx.icmp_engine is not None
        ctx.icmp_engine.close()
