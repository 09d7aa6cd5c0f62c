"""The network of `bench.sites`: a `targets` namespace where every address of the
benchmark prefix 198.18.0.0/15 answers ping, and one namespace per site joined to it by a
veth pair, the way tests/netns.py builds its test hosts.

Inside `targets`, `ip route add local 198.18.0.0/15 dev lo` makes the whole prefix local,
so 100,000 targets cost no interfaces. Each site reaches the prefix through its own veth
pair (a free /30 in 10.254.0.0/16, checked against every address and route on the
machine) and nothing else: cutting that pair blinds the site for real. No address of the
pairs or the prefix exists outside these namespaces, so no traffic leaves them.
Everything made here is removed by `close()`, also after a failure half-way.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import secrets
import subprocess
from dataclasses import dataclass

PREFIX = ipaddress.IPv4Network("198.18.0.0/15")


@dataclass(frozen=True)
class Site:
    id: str
    netns: str
    veth_site: str  # the site's end, inside `netns`
    veth_targets: str  # the targets' end, inside the targets namespace
    address: str  # the site's end
    gateway: str  # the targets' end: the site's canary


def ip(*args: str) -> None:
    run = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {run.stderr.strip()}")


def target_address(index: int) -> str:
    """The benchmark address of link `index` (0-based), inside PREFIX."""
    address = PREFIX.network_address + 1 + index
    if address >= PREFIX.broadcast_address:
        raise ValueError(f"{index + 1:,} targets do not fit {PREFIX}")
    return str(address)


def _networks_in_use() -> list[ipaddress.IPv4Network]:
    used: list[ipaddress.IPv4Network] = []
    for command in (
        ["ip", "-o", "-4", "addr", "show"],
        ["ip", "-4", "route", "show", "table", "all"],
    ):
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        for word in out.split():
            with contextlib.suppress(ValueError):
                used.append(ipaddress.IPv4Network(word, strict=False))
    return used


class Topology:
    """`targets` plus `sites` site namespaces; `close()` removes them all."""

    def __init__(self, sites: int) -> None:
        self.tag = secrets.token_hex(3)
        self.targets = f"lwbench-{self.tag}-targets"
        self.sites: list[Site] = []
        self._namespaces: list[str] = []
        self._links: list[str] = []  # root-namespace names of veths made, for cleanup
        try:
            self._build(sites)
        except BaseException:
            self.close()
            raise

    def _netns(self, name: str) -> None:
        ip("netns", "add", name)
        self._namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def _build(self, count: int) -> None:
        self._netns(self.targets)
        ip("-n", self.targets, "route", "add", "local", str(PREFIX), "dev", "lo")
        used = _networks_in_use()
        for n in range(count):
            net = self._free_slash30(used)
            used.append(net)
            site_id = f"s{n}"
            site = Site(
                id=site_id,
                netns=f"lwbench-{self.tag}-{site_id}",
                veth_site=f"lwb{self.tag}{n}s",
                veth_targets=f"lwb{self.tag}{n}t",
                address=str(net[2]),
                gateway=str(net[1]),
            )
            self._netns(site.netns)
            ip("link", "add", site.veth_site, "type", "veth", "peer", "name", site.veth_targets)
            self._links.append(site.veth_site)
            ip("link", "set", site.veth_site, "netns", site.netns)
            ip("link", "set", site.veth_targets, "netns", self.targets)
            ip("-n", self.targets, "addr", "add", f"{site.gateway}/30", "dev", site.veth_targets)
            ip("-n", self.targets, "link", "set", site.veth_targets, "up")
            ip("-n", site.netns, "addr", "add", f"{site.address}/30", "dev", site.veth_site)
            ip("-n", site.netns, "link", "set", site.veth_site, "up")
            ip("-n", site.netns, "route", "add", str(PREFIX), "via", site.gateway)
            self.sites.append(site)

    @staticmethod
    def _free_slash30(used: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
        for _ in range(200):
            net = ipaddress.IPv4Network(
                (f"10.254.{random.randrange(256)}.{random.randrange(64) * 4}", 30)
            )
            if not any(net.overlaps(u) for u in used):
                return net
        raise RuntimeError("no free /30 in 10.254.0.0/16")

    # -- faults ----------------------------------------------------------------------------

    def cut_site(self, site: Site, cut: bool) -> None:
        """The site's uplink down (its veth's targets end), or up again."""
        ip("-n", self.targets, "link", "set", site.veth_targets, "down" if cut else "up")

    def cut_target(self, address: str, cut: bool) -> None:
        """One target silent for every site: a blackhole /32 in the targets' local table,
        which wins over the prefix's local route by being longer."""
        verb = "add" if cut else "del"
        ip("-n", self.targets, "route", verb, "blackhole", f"{address}/32", "table", "local")

    def close(self) -> None:
        for name in self._namespaces:
            # Deleting a namespace destroys the veths in it, and with them their peers.
            with contextlib.suppress(RuntimeError):
                ip("netns", "del", name)
        self._namespaces.clear()
        for link in self._links:  # a veth not moved yet when building failed
            with contextlib.suppress(RuntimeError):
                ip("link", "del", link)
        self._links.clear()
