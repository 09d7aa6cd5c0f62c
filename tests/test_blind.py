"""A monitor cut off from the network records `unknown`, never the customer's `down`.

The monitor runs in a network namespace of its own with nothing but loopback, as a
monitor whose uplink is gone: every probe kind is asked to reach a test host that
answers, and records `unknown` with the reason, while the same probes from a monitor
that has its route measure the host (and a closed port there stays the target's `down`).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
from pathlib import Path

from kernel.domain import Outcome
from probes.faults import has_route, monitor_fault
from tests.helpers import REPO, free_port
from tests.netns import NamespaceHost, _ip


def _config(tmp_path: Path, host: str, closed_port: int) -> Path:
    config = tmp_path / "linkwatch.yaml"
    config.write_text(
        f"data_dir: {tmp_path}\n"
        "customers: [{id: acme, name: ACME}]\n"
        "links:\n"
        "  - id: hq\n"
        "    customer: acme\n"
        "    probes:\n"
        f"      - {{id: ping, kind: icmp, host: '{host}', count: 2, timeout: 500ms}}\n"
        f"      - {{id: port, kind: tcp, host: '{host}', port: {closed_port}, timeout: 1s}}\n"
        f"      - {{id: web, kind: http, url: 'http://{host}:{closed_port}/', timeout: 1s}}\n"
    )
    return config


def _probe_once(config: Path, netns: str | None = None) -> dict[str, dict[str, object]]:
    command = [sys.executable, "-m", "linkwatch", "probe", "--once", "--config", str(config)]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    run = subprocess.run(
        [*command, "--format", "json"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return {sample["probe"]: sample for sample in json.loads(run.stdout)}


def test_a_monitor_without_a_route_records_unknown_for_every_probe_kind(
    netns_host: NamespaceHost, tmp_path: Path
) -> None:
    config = _config(tmp_path, netns_host.host, free_port())
    cut_off = f"lwblind-{secrets.token_hex(4)}"
    _ip("netns", "add", cut_off)
    try:
        _ip("-n", cut_off, "link", "set", "lo", "up")
        blind = _probe_once(config, cut_off)
    finally:
        with contextlib.suppress(RuntimeError):
            _ip("netns", "del", cut_off)
    for probe in ("ping", "port", "web"):
        assert blind[probe]["outcome"] == Outcome.UNKNOWN.value, blind[probe]
        assert str(blind[probe]["error"]).startswith(f"monitor: no route to {netns_host.host}"), (
            blind[probe]
        )
    assert blind["ping"]["loss_pct"] is None  # nothing was sent, so nothing was lost

    # With its route, the same monitor measures the host: it answers pings, and the
    # closed port is the target's refusal, down as before.
    seen = _probe_once(config)
    assert seen["ping"]["outcome"] == Outcome.UP.value, seen["ping"]
    assert seen["port"]["outcome"] == Outcome.DOWN.value
    assert seen["port"]["error"] == "connection refused"
    assert seen["web"]["outcome"] == Outcome.DOWN.value
    assert seen["web"]["error"] == "connection refused"


def test_an_unreachable_error_is_the_monitors_only_without_a_local_route(
    netns_host: NamespaceHost,
) -> None:
    import errno

    # A host on a connected subnet: a route exists, so "unreachable" is the target's
    # (its neighbour did not answer), as is any router's word for the path.
    assert has_route(netns_host.empty)
    assert not monitor_fault(errno.EHOSTUNREACH, (netns_host.empty,))
    assert not monitor_fault(errno.ENETUNREACH, (netns_host.empty,))
    assert not monitor_fault(errno.ECONNREFUSED, (netns_host.empty,))
    # What this machine forbids or lacks is its own, whatever the address.
    assert monitor_fault(errno.EPERM, (netns_host.empty,))
    assert monitor_fault(errno.ENOBUFS)
    # No route of its own: the monitor's. (The test network's prefix, seen from inside
    # the test host's namespace, which only knows its own subnet: checked there.)
    inside = subprocess.run(
        [
            "ip", "netns", "exec", netns_host.netns, sys.executable, "-c",
            "import errno; from probes.faults import has_route, monitor_fault; "
            "print(has_route('10.253.0.1'), monitor_fault(errno.ENETUNREACH, ('10.253.0.1',)))",
        ],
        capture_output=True, text=True, cwd=REPO, timeout=30,
    )  # fmt: skip
    assert inside.stdout.split() == ["False", "True"], inside.stderr
