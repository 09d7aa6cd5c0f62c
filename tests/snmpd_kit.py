"""A real net-snmp agent inside a test's own network namespace (tests/netns.py).

`snmpd_in(host, directory)` starts Debian's snmpd in the namespace, listening only on the
namespace host's address with community `public`, and stops it afterwards. The customer's
port it reports on is a veth pair made wholly inside the namespace (`PORT`), so a test
takes the port down with `host.exec("ip", "link", "set", PORT, "down")` while the
namespace host itself keeps answering pings.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns import NamespaceHost

PORT, PORT_PEER = "cport", "cpeer"  # the customer's port and the far end of its cable
SNMP_PORT = 16161


@contextlib.contextmanager
def snmpd_in(host: NamespaceHost, directory: Path) -> Iterator[str]:
    """Run snmpd in `host`'s namespace; yield its `address:port` for a probe's `host`."""
    if shutil.which("snmpd") is None or shutil.which("snmpget") is None:
        pytest.skip("snmpd / snmpget not installed (apt-get install snmpd snmp)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "persist").mkdir(exist_ok=True)
    address = f"{host.host}:{SNMP_PORT}"
    (directory / "snmpd.conf").write_text(
        f"agentAddress udp:{address}\n"
        "rocommunity public default\n"
        f"[snmp] persistentDir {directory / 'persist'}\n"
    )
    host.exec("ip", "link", "add", PORT, "type", "veth", "peer", "name", PORT_PEER)
    host.exec("ip", "link", "set", PORT, "up")
    host.exec("ip", "link", "set", PORT_PEER, "up")
    env = {**os.environ, "MIBS": "", "MIBDIRS": str(directory), "SNMPCONFPATH": str(directory)}
    with (directory / "snmpd.log").open("ab") as log:
        agent = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, "snmpd", "-f", "-Lo"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_for(address, directory)
        yield address
    finally:
        agent.terminate()
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def _wait_for(address: str, directory: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["snmpget", "-v2c", "-c", "public", "-r0", "-t0.3", "-On", address,
             "1.3.6.1.2.1.1.3.0"],
            capture_output=True, check=False, env={**os.environ, "MIBS": ""},
        )  # fmt: skip
        if done.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"snmpd did not answer; see {directory / 'snmpd.log'}")
