"""Test hosts in network namespaces that a test creates and removes itself.

No traffic leaves loopback or the test's own veth pair: subnets are picked at random
inside 10.254.0.0/16 and fd6c::/16, checked against every address and route on the
machine first, and exist only on both ends of the pair.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from probes import detect_context


@dataclass(frozen=True)
class NamespaceHost:
    """A host in a namespace of its own, behind a veth pair: `host` answers, `empty` is an
    unused address on the same subnet."""

    netns: str
    veth_inside: str
    host: str
    host_v6: str
    empty: str

    def exec(self, *command: str) -> None:
        _ip("netns", "exec", self.netns, *command)


def _ip(*args: str) -> None:
    run = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {run.stderr.strip()}")


def _networks_in_use() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for command in (["ip", "-o", "addr", "show"], ["ip", "route", "show", "table", "all"]):
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        for word in out.split():
            with contextlib.suppress(ValueError):
                if "/" in word or command[2] == "route":
                    used.append(ipaddress.ip_network(word, strict=False))
    return used


def _free_subnets() -> tuple[ipaddress.IPv4Network, ipaddress.IPv6Network]:
    used = _networks_in_use()
    for _ in range(50):
        a, b, c = random.randrange(256), random.randrange(1 << 16), random.randrange(1 << 16)
        v4 = ipaddress.IPv4Network((f"10.254.{a}.{random.randrange(32) * 8}", 29))
        v6 = ipaddress.IPv6Network((f"fd6c:{b:x}:{c:x}::", 64))
        if not any(net.overlaps(u) for net in (v4, v6) for u in used if u.version == net.version):
            return v4, v6
    pytest.skip("no free test subnet in 10.254.0.0/16")


@pytest.fixture
def netns_host() -> Iterator[NamespaceHost]:
    if shutil.which("ip") is None:
        pytest.skip("ip (iproute2) is not installed; CI installs it")
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")
    if detect_context().icmp_privileged is None:
        pytest.skip("no ICMP socket permission")
    tag = secrets.token_hex(4)
    netns, outside, inside = f"lwtest-{tag}", f"lwt{tag}o", f"lwt{tag}i"
    v4, v6 = _free_subnets()
    ours, theirs, empty = (str(v4[i]) for i in (1, 2, 3))
    ours6, theirs6 = str(v6[1]), str(v6[2])
    try:
        _ip("netns", "add", netns)
    except RuntimeError as exc:
        pytest.skip(f"cannot create a network namespace here: {exc}")
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", netns)
        _ip("addr", "add", f"{ours}/29", "dev", outside)
        _ip("-6", "addr", "add", f"{ours6}/64", "dev", outside, "nodad")
        _ip("link", "set", outside, "up")
        host = NamespaceHost(netns, inside, theirs, theirs6, empty)
        host.exec("ip", "addr", "add", f"{theirs}/29", "dev", inside)
        host.exec("ip", "-6", "addr", "add", f"{theirs6}/64", "dev", inside, "nodad")
        host.exec("ip", "link", "set", inside, "up")
        host.exec("ip", "link", "set", "lo", "up")
        yield host
    finally:
        with contextlib.suppress(RuntimeError):
            _ip("link", "del", outside)  # takes its peer inside the namespace with it
        _ip("netns", "del", netns)
