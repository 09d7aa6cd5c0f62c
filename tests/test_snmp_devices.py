"""What real devices do and a healthy snmpd does not, served through net-snmp's snmpd.

snmpd listens on loopback with its own ifTable, ifXTable and sysUpTime switched off;
`tests.snmp_agentx` registers those subtrees over AgentX and serves the values (and
errors) each test writes to a JSON file. The poller talks to snmpd as to any device:
snmpd's PDU handling, error index and GETBULK are the real ones.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from kernel.config import SnmpProbe
from kernel.domain import Outcome, ProbeResult
from probes import ProbeContext
from probes.snmp.poller import SnmpPoller
from probes.snmp.probe import probe_snmp

REPO = Path(__file__).resolve().parent.parent
IF = "1.3.6.1.2.1.2.2.1"
IFX = "1.3.6.1.2.1.31.1.1.1"
UPTIME = "1.3.6.1.2.1.1.3.0"


class Device:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.values_path = directory / "values.json"
        self.values: dict[str, list[Any]] = {}

    def write(self, values: dict[str, list[Any]]) -> None:
        self.values = values
        staged = self.values_path.with_suffix(".new")
        staged.write_text(json.dumps(values))
        staged.replace(self.values_path)  # the subagent never reads half a file

    def update(self, **changes: list[Any]) -> None:
        self.write({**self.values, **{k.replace("_", "."): v for k, v in changes.items()}})

    def spec(self, **fields: Any) -> SnmpProbe:
        return SnmpProbe.model_validate(
            {
                "id": "snmp",
                "kind": "snmp",
                "host": f"127.0.0.1:{self.port}",
                "community": "public",
                "timeout": "1s",
                **fields,
            }
        )


def interface(index: int, *, wide: bool = True, speed: int = 1_000_000_000) -> dict[str, list[Any]]:
    """An up interface with zero counters; 64-bit octets (and ifHighSpeed) if `wide`."""
    row: dict[str, list[Any]] = {
        f"{IF}.5.{index}": ["gauge32", min(speed, (1 << 32) - 1)],
        f"{IF}.7.{index}": ["integer", 1],
        f"{IF}.8.{index}": ["integer", 1],
        f"{IF}.10.{index}": ["counter32", 0],
        f"{IF}.13.{index}": ["counter32", 0],
        f"{IF}.14.{index}": ["counter32", 0],
        f"{IF}.16.{index}": ["counter32", 0],
        f"{IF}.19.{index}": ["counter32", 0],
        f"{IF}.20.{index}": ["counter32", 0],
        f"{IFX}.1.{index}": ["string", f"port{index}"],
    }
    if wide:
        row[f"{IFX}.6.{index}"] = ["counter64", 0]
        row[f"{IFX}.10.{index}"] = ["counter64", 0]
        row[f"{IFX}.15.{index}"] = ["gauge32", speed // 1_000_000]
    return row


def _unavailable() -> str | None:
    if shutil.which("snmpd") is None:
        return "snmpd not installed (apt-get install snmpd)"
    return None


@pytest.fixture(scope="module")
def device() -> Iterator[Device]:
    reason = _unavailable()
    if reason is not None:
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="linkwatch-agentx-"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (directory / "persist").mkdir()
    (directory / "snmpd.conf").write_text(
        f"agentAddress udp:127.0.0.1:{port}\n"
        "rocommunity public 127.0.0.1\n"
        "master agentx\n"
        f"agentXSocket {directory / 'agentx.sock'}\n"
        "agentXTimeout 2\n"
        "agentXRetries 0\n"
        f"[snmp] persistentDir {directory / 'persist'}\n"
    )
    the_device = Device(directory, port)
    the_device.write({UPTIME: ["timeticks", 100_000], **interface(1)})
    env = {**os.environ, "MIBS": "", "SNMPCONFPATH": str(directory)}
    snmpd = subprocess.Popen(
        ["snmpd", "-f", "-Lo", "-I", "-ifTable,-ifXTable,-system_mib,-interfaces"],
        stdout=(directory / "snmpd.log").open("wb"), stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    subagent = None
    try:
        deadline = time.monotonic() + 10
        while not (directory / "agentx.sock").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"snmpd did not start; see {directory / 'snmpd.log'}")
            time.sleep(0.05)
        subagent = subprocess.Popen(
            [sys.executable, "-m", "tests.snmp_agentx", str(directory / "agentx.sock"),
             str(the_device.values_path), "1.3.6.1.2.1.1.3", "1.3.6.1.2.1.2.2",
             "1.3.6.1.2.1.31.1.1"],
            stdout=subprocess.PIPE, text=True, cwd=REPO,
        )  # fmt: skip
        assert subagent.stdout is not None
        assert subagent.stdout.readline().strip() == "registered"
        yield the_device
    finally:
        for process in (subagent, snmpd):
            if process is not None:
                process.terminate()
                process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


@pytest_asyncio.fixture
async def ctx() -> AsyncIterator[ProbeContext]:
    context = ProbeContext(icmp_privileged=None, snmp=SnmpPoller())
    yield context
    await context.snmp.close()


async def poll_all(ctx: ProbeContext, specs: list[SnmpProbe]) -> list[ProbeResult]:
    return list(await asyncio.gather(*(probe_snmp(spec, ctx) for spec in specs)))


async def test_one_failing_varbind_costs_only_its_own_metric_or_interface(
    device: Device, ctx: ProbeContext
) -> None:
    device.write(
        {
            UPTIME: ["timeticks", 100_000],
            **interface(1),
            **interface(2),
            **interface(3),
            f"{IF}.14.2": ["error", 5],  # genErr on port 2's ifInErrors
            f"{IF}.8.3": ["error", 6],  # noAccess on port 3's ifOperStatus
        }
    )
    specs = [device.spec(interface={"index": i}) for i in (1, 2, 3)]
    first = await poll_all(ctx, specs)
    device.update(**{UPTIME.replace(".", "_"): ["timeticks", 100_100]})
    second = await poll_all(ctx, specs)
    for results in (first, second):
        assert results[0].outcome is Outcome.UP, results[0].error
        assert results[1].outcome is Outcome.UP, results[1].error
        assert results[2].outcome is Outcome.UNKNOWN
        assert results[2].error == (
            f"agent 127.0.0.1:{device.port} answered noAccess for ifOperStatus of ifIndex 3"
        )
    assert second[0].metrics["in_errors_per_s"] == 0
    assert "in_errors_per_s" not in second[1].metrics  # the one counter it could not read
    assert second[1].metrics["in_bps"] == 0
    assert second[1].metrics["out_errors_per_s"] == 0


async def test_counter32_interfaces_get_rates_and_utilisation_and_a_clear_is_no_wrap(
    device: Device, ctx: ProbeContext
) -> None:
    # A Brocade-like port: ifTable only, 100 Mbit/s, octets near the 32-bit wrap.
    row = interface(1, wide=False, speed=100_000_000)
    row[f"{IF}.10.1"] = ["counter32", 4_294_000_000]
    row[f"{IF}.14.1"] = ["counter32", (1 << 31) + 5]
    device.write({UPTIME: ["timeticks", 100_000], **row})
    spec = device.spec(interface={"index": 1})
    await probe_snmp(spec, ctx)
    device.update(
        **{
            UPTIME.replace(".", "_"): ["timeticks", 100_100],  # one second later
            f"{IF}.10.1".replace(".", "_"): ["counter32", 20_000],  # wrapped
            f"{IF}.14.1".replace(".", "_"): ["counter32", 3],  # cleared, not wrapped
        }
    )
    result = await probe_snmp(spec, ctx)
    assert result.outcome is Outcome.UP, result.error
    assert result.metrics["in_bps"] == 8.0 * ((1 << 32) - 4_294_000_000 + 20_000)
    assert result.metrics["in_utilisation_pct"] == pytest.approx(result.metrics["in_bps"] / 1e6)
    assert result.metrics["speed_bps"] == 100e6
    assert "in_errors_per_s" not in result.metrics  # not 2^31 errors in one second
    assert result.metrics["out_discards_per_s"] == 0
    device.update(
        **{
            UPTIME.replace(".", "_"): ["timeticks", 100_200],
            f"{IF}.10.1".replace(".", "_"): ["counter32", (1 << 31) + 1_000],
        }
    )
    await probe_snmp(spec, ctx)
    device.update(
        **{
            UPTIME.replace(".", "_"): ["timeticks", 100_300],
            f"{IF}.10.1".replace(".", "_"): ["counter32", 1_000],  # clear counters
        }
    )
    cleared = await probe_snmp(spec, ctx)
    assert cleared.outcome is Outcome.UP, cleared.error
    assert "in_bps" not in cleared.metrics  # no 17 Gbit/s on a 100 Mbit/s port


async def test_a_latin1_alias_matches_and_an_ifxtable_only_port_costs_no_walk_per_poll(
    device: Device, ctx: ProbeContext
) -> None:
    device.write(
        {
            UPTIME: ["timeticks", 100_000],
            **interface(1),
            f"{IFX}.18.1": ["octets", "CID-1001 Müller".encode("latin-1").hex()],
            f"{IFX}.1.9": ["string", "mgmt0"],  # in ifXTable, no ifTable row
        }
    )
    alias = device.spec(interface={"alias": "CID-1001 Müller"})
    orphan = device.spec(interface={"name": "mgmt0"})
    for _ in range(3):
        by_alias, by_name = await poll_all(ctx, [alias, orphan])
        assert by_alias.outcome is Outcome.UP, by_alias.error
        assert by_alias.metrics["if_index"] == 1
        assert by_name.outcome is Outcome.UNKNOWN
        assert by_name.error == (
            f"ifName 'mgmt0' is ifIndex 9 in ifXTable, but ifTable has no such row on "
            f"127.0.0.1:{device.port}: the agent gives no status for it"
        )
    assert ctx.snmp.walks == 2  # one per naming column, not one per poll


async def test_a_frozen_sysuptime_is_reported_once_and_rates_follow_our_clock(
    device: Device, ctx: ProbeContext, caplog: pytest.LogCaptureFixture
) -> None:
    device.write({UPTIME: ["timeticks", 100_000], **interface(1)})
    spec = device.spec(interface={"index": 1})
    with caplog.at_level(logging.INFO, logger="probes"):
        await probe_snmp(spec, ctx)
        for octets in (1_000_000, 2_000_000):
            await asyncio.sleep(5.2)  # longer than one poll's slack
            device.update(**{f"{IFX}.6.1".replace(".", "_"): ["counter64", octets]})
            result = await probe_snmp(spec, ctx)
            assert result.outcome is Outcome.UP, result.error
            assert 1_000_000 < result.metrics["in_bps"] < 1_600_000  # 8 Mbit over ~5.2 s
    assert "restarted" not in caplog.text
    assert caplog.text.count("sysUpTime stands still") == 1
