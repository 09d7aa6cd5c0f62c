"""The one map from probe kind to probe function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from kernel.config import Link
from kernel.domain import ProbeResult
from probes.context import ProbeContext
from probes.http import probe_http
from probes.icmp import probe_icmp
from probes.snmp.probe import probe_snmp
from probes.tcp import probe_tcp

ProbeFunction = Callable[[Any, ProbeContext], Awaitable[ProbeResult]]

PROBES: dict[str, ProbeFunction] = {
    "http": probe_http,
    "icmp": probe_icmp,
    "snmp": probe_snmp,
    "tcp": probe_tcp,
}


def unsupported_probes(links: Iterable[Link]) -> Iterator[tuple[str, str, str]]:
    """(link id, probe id, kind) of every configured probe this version cannot run."""
    for link in links:
        for spec in link.probes:
            if spec.kind not in PROBES:
                yield link.id, spec.id, spec.kind
