"""SNMP interface polls per second: Linkwatch's poller against net-snmp and the agent.

    .venv/bin/python -m bench.snmp [--interfaces 50] [--devices 20] [--rounds 10]

(As a module: run by path, bench/ comes first on sys.path and bench/http.py would
shadow the standard library's http package.)

Needs root (it builds its own network namespace, joined to this one by a veth pair on
198.18.98.0/30, with `--interfaces` dummy interfaces, or bridges where the kernel has no
dummy driver) and Debian's snmpd/snmp. snmpd listens on `--devices` ports of one address
inside the namespace; each port is a separate device to the poller, carrying every
interface. Nothing is sent anywhere but to that address. In one run it measures:

- linkwatch v2c and v3 SHA/AES authPriv, each through its fast codec and through pysnmp:
  every interface of every device probed once per round, all at once, as a scheduler
  firing them would; interface polls per second of wall time and per CPU second of this
  process (= per core: the poller is one asyncio thread). `via_pysnmp` counts the GETs
  that went through pysnmp (0 for the fast codecs; the name walks always do).
- net-snmp: `snmpget` (v2c, and v3 with the same user) with the same varbinds per request
  as the poller's GETs, two processes at a time (one per core).
- the agent's ceiling: pre-encoded GETs with the same varbinds, 64 in flight, no
  per-interface work: the most snmpd itself answers.

Other benchmarks may share this machine: look at the CPU figures, and repeat if disturbed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kernel.config import SnmpProbe
from kernel.domain import Outcome
from probes.context import ProbeContext
from probes.snmp.mib import INTERFACE_COLUMNS, SYS_UPTIME
from probes.snmp.poller import SnmpPoller
from probes.snmp.probe import probe_snmp
from probes.snmp.v2c import V2cClient
from probes.snmp.wire import encode_oid, null_varbind

NS = f"lwbench-{os.getpid()}"
HOST_END = f"lwb{os.getpid() % 100000}"
HOST_IP, AGENT_IP = "198.18.98.1", "198.18.98.2"
BASE_PORT = 16200
AUTH, PRIV = "bench-auth-key", "bench-priv-key"
PER_REQUEST = 16  # interfaces per GET, the poller's default


def sh(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def in_ns(*args: str, check: bool = True) -> str:
    return sh("ip", "netns", "exec", NS, *args, check=check)


def build(interfaces: int, devices: int, directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", HOST_END, "type", "veth", "peer", "name", "uplink", "netns", NS)
    sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_END)
    sh("ip", "link", "set", HOST_END, "up")
    in_ns("ip", "link", "set", "lo", "up")
    in_ns("ip", "addr", "add", f"{AGENT_IP}/30", "dev", "uplink")
    in_ns("ip", "link", "set", "uplink", "up")
    # Dummy interfaces where the kernel has the driver; bridges (as cheap) where not.
    dummy = subprocess.run(
        ["ip", "netns", "exec", NS, "ip", "link", "add", "if0", "type", "dummy"],
        capture_output=True,
        check=False,
    )
    kind = "dummy" if dummy.returncode == 0 else "bridge"
    for i in range(interfaces):
        name = f"if{i}"
        if not (i == 0 and kind == "dummy"):
            in_ns("ip", "link", "add", name, "type", kind)
        in_ns("ip", "link", "set", name, "up")
    addresses = ",".join(f"udp:{AGENT_IP}:{BASE_PORT + d}" for d in range(devices))
    conf = directory / "snmpd.conf"
    conf.write_text(
        f"agentAddress {addresses}\n"
        "rocommunity public default\n"
        f'createUser benchuser SHA "{AUTH}" AES "{PRIV}"\n'
        "rouser benchuser priv\n"
        f"[snmp] persistentDir {directory}\n"
    )
    agent = subprocess.Popen(
        ["ip", "netns", "exec", NS, "snmpd", "-f", "-Lo", "-C", "-c", str(conf)],
        stdout=(directory / "snmpd.log").open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "MIBS": "", "MIBDIRS": str(directory)},
    )
    return agent, kind


def teardown(agent: subprocess.Popen[bytes] | None) -> None:
    if agent is not None:
        agent.terminate()
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
    sh("ip", "link", "del", HOST_END, check=False)
    sh("ip", "netns", "del", NS, check=False)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def specs(devices: int, names: Sequence[str], v3: bool) -> list[SnmpProbe]:
    base: dict[str, Any] = {"kind": "snmp", "timeout": "2s", "retries": 1}
    if v3:
        base |= {"version": "3", "user": "benchuser", "auth_key": AUTH, "priv_key": PRIV}
    else:
        base |= {"community": "public"}
    return [
        SnmpProbe.model_validate(
            {
                **base,
                "id": f"p{d}-{i}",
                "host": f"{AGENT_IP}:{BASE_PORT + d}",
                "interface": {"name": name},
            }
        )
        for d in range(devices)
        for i, name in enumerate(names)
    ]


async def linkwatch_rate(
    label: str, poller: SnmpPoller, probes: list[SnmpProbe], rounds: int
) -> float:
    ctx = ProbeContext(icmp_privileged=None, snmp=poller)
    try:
        warm = await asyncio.gather(*(probe_snmp(p, ctx) for p in probes))  # walks, discovery
        failed = [r.error for r in warm if r.outcome is not Outcome.UP]
        if failed:
            raise SystemExit(f"{label}: {len(failed)} failures in warm-up, e.g. {failed[0]}")
        requests_before, pysnmp_before, failures = poller.requests, poller.pysnmp_gets, 0
        wall, cpu = time.perf_counter(), cpu_s()
        for _ in range(rounds):
            results = await asyncio.gather(*(probe_snmp(p, ctx) for p in probes))
            failures += sum(r.outcome is not Outcome.UP for r in results)
        wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
        requests = poller.requests - requests_before
    finally:
        await poller.close()
    polls = rounds * len(probes)
    print(
        f"{label:<34} {polls / wall:>9,.0f} polls/s  {polls / cpu:>9,.0f} polls/CPU-s  "
        f"requests={requests} interfaces/request={polls / requests:.1f} "
        f"via_pysnmp={poller.pysnmp_gets - pysnmp_before} failures={failures}"
    )
    if failures:
        raise SystemExit(f"{label}: {failures} failed polls")
    return polls / cpu


def request_oids(indexes: Sequence[int]) -> list[tuple[int, ...]]:
    return [SYS_UPTIME, *((*column, i) for i in indexes for column in INTERFACE_COLUMNS)]


def netsnmp_rate(indexes: Sequence[int], devices: int, seconds: float, v3: bool) -> float:
    # snmpget takes at most 128 OIDs a request: as many whole interfaces as fit.
    indexes = indexes[: (128 - 1) // len(INTERFACE_COLUMNS)]
    oids = [".".join(map(str, oid)) for oid in request_oids(indexes)]
    env = {**os.environ, "MIBS": ""}
    if v3:
        security = ["-v3", "-l", "authPriv", "-u", "benchuser", "-a", "SHA", "-A", AUTH,
                    "-x", "AES", "-X", PRIV]  # fmt: skip
    else:
        security = ["-v2c", "-c", "public"]
    label = f"net-snmp snmpget {'v3' if v3 else 'v2c'} x2"

    def command(d: int) -> list[str]:
        return ["snmpget", *security, "-On", "-Oq", "-r1", "-t2",
                f"{AGENT_IP}:{BASE_PORT + d % devices}", *oids]  # fmt: skip

    done = failures = 0
    running: list[subprocess.Popen[bytes]] = []
    began = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    while time.perf_counter() - began < seconds or running:
        while len(running) < 2 and time.perf_counter() - began < seconds:
            running.append(
                subprocess.Popen(command(done + len(running)), stdout=subprocess.DEVNULL, env=env)
            )
        first = running.pop(0)
        failures += first.wait() != 0
        done += 1
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    polls = done * len(indexes)
    print(
        f"{label:<34} {polls / wall:>9,.0f} polls/s  {polls / cpu:>9,.0f} "
        f"polls/CPU-s  requests={done} interfaces/request={len(indexes)} failures={failures}"
    )
    return polls / cpu


async def agent_ceiling(indexes: Sequence[int], devices: int, seconds: float) -> float:
    client = V2cClient()
    varbinds = [null_varbind(encode_oid(oid)) for oid in request_oids(indexes)]
    done = failures = 0
    stop_at = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done, failures
        address = (AGENT_IP, BASE_PORT + n % devices)
        while time.perf_counter() < stop_at:
            response = await client.get(address, b"public", varbinds, timeout_s=2, retries=1)
            failures += response.error_status != 0
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(64)))
    wall = time.perf_counter() - began
    client.close()
    polls = done * len(indexes)
    print(
        f"{'agent ceiling (raw v2c GETs)':<34} {polls / wall:>9,.0f} polls/s  "
        f"requests={done} failures={failures}"
    )
    return polls / wall


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interfaces", type=int, default=50)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0, help="net-snmp and ceiling runs")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("snmpd") is None:
        raise SystemExit("needs root and snmpd (apt-get install snmpd snmp)")
    directory = Path(tempfile.mkdtemp(prefix="linkwatch-bench-snmp-"))
    agent = None
    try:
        agent, kind = build(args.interfaces, args.devices, directory)
        await asyncio.sleep(1.0)
        names = [f"if{i}" for i in range(args.interfaces)]
        indexes = [int(in_ns("cat", f"/sys/class/net/{n}/ifindex")) for n in names]
        print(
            f"{args.devices} devices x {args.interfaces} {kind} interfaces = "
            f"{args.devices * args.interfaces} probes per round, {args.rounds} rounds; "
            f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
        )
        v2c, v3 = specs(args.devices, names, False), specs(args.devices, names, True)
        few = max(1, args.rounds // 5)  # pysnmp is slow
        ours: dict[str, tuple[float, float]] = {}
        for version, probes in (("v2c", v2c), ("v3", v3)):
            label = "v2c" if version == "v2c" else "v3 SHA/AES"
            fast = await linkwatch_rate(
                f"linkwatch {label} (fast codec)",
                SnmpPoller(max_interfaces_per_request=PER_REQUEST),
                probes,
                args.rounds,
            )
            slow = await linkwatch_rate(
                f"linkwatch {label} (pysnmp)",
                SnmpPoller(max_interfaces_per_request=PER_REQUEST, fast_v2c=False, fast_v3=False),
                probes,
                few,
            )
            ours[version] = (fast, slow)
        per_request = indexes[:PER_REQUEST]
        netsnmp = {
            version: await asyncio.to_thread(
                netsnmp_rate, per_request, args.devices, args.seconds, version == "v3"
            )
            for version in ("v2c", "v3")
        }
        ceiling = await agent_ceiling(per_request, args.devices, args.seconds)
        for version, (fast, slow) in ours.items():
            print(
                f"{version} per CPU-s: fast codec {fast:,.0f}, {fast / slow:.1f}x pysnmp, "
                f"{fast / netsnmp[version]:.1f}x net-snmp snmpget; goal 5,000 polls/s per "
                f"core: {'met' if fast >= 5000 else 'NOT met'}"
            )
        print(f"agent ceiling {ceiling:,.0f} polls/s")
    finally:
        teardown(agent)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
