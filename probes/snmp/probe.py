"""SNMP probe: an interface's operational state and traffic rates, via the shared poller.

`probe_snmp` asks the process's `SnmpPoller` (on the ProbeContext) for its interface;
the poller coalesces every probe of the same device into one GET. This module turns the
answer into a result:

- ``ifAdminStatus`` down (or testing): ``down`` with error ``admin-down``
  (``admin-testing``): someone shut the port, which is still an outage for the customer;
  the cause lets billing and the NOC tell it apart from a failure.
- ``ifOperStatus`` up: ``up``; down, lowerLayerDown, notPresent, dormant or testing:
  ``down`` with ``oper-down``, ``oper-lowerLayerDown``, ...; unknown(4): ``unknown``.
- No reply within timeout x tries: ``down`` with ``timeout: ...``. For v2c that is also
  what a wrong community looks like (agents drop such requests silently), and the error
  says so; it is counted as ``down`` because an unreachable device is by far the
  likelier cause and must not be hidden.
- SNMPv3 authentication or privacy failures, an interface that cannot be found (or is
  ambiguous), agent errors and noSuchObject: ``unknown`` with the reason: the monitor
  cannot measure, which says nothing about the link.

Traffic rates and error rates go to ``metrics`` (see `probes.snmp.counters`). The round
trip goes to ``phases_ms["snmp"]``, not ``rtt_ms``: an agent's reply time is not the
link's latency and must not trip the link's RTT thresholds. Never raises for a target's
failure.
"""

from __future__ import annotations

from kernel.config import SnmpProbe
from kernel.domain import Outcome, ProbeResult
from probes.context import ProbeContext
from probes.snmp.targets import Reading, SnmpFailure

_OPER_DOWN = {
    2: "oper-down",
    3: "oper-testing",
    5: "oper-dormant",
    6: "oper-notPresent",
    7: "oper-lowerLayerDown",
}


async def probe_snmp(spec: SnmpProbe, ctx: ProbeContext) -> ProbeResult:
    try:
        reading = await ctx.snmp.poll(spec)
    except SnmpFailure as failure:
        return ProbeResult(failure.outcome, error=failure.message)
    return interpret(reading)


def interpret(reading: Reading) -> ProbeResult:
    """The outcome a reading stands for."""
    phases = {"snmp": reading.round_trip_ms}
    if reading.if_index is None:  # no interface named: the agent answering is the test
        return ProbeResult(Outcome.UP, phases_ms=phases)
    metrics = reading.metrics
    if reading.admin_status == 2:
        return ProbeResult(Outcome.DOWN, error="admin-down", phases_ms=phases, metrics=metrics)
    if reading.admin_status == 3:
        return ProbeResult(Outcome.DOWN, error="admin-testing", phases_ms=phases, metrics=metrics)
    if reading.oper_status == 1:
        return ProbeResult(Outcome.UP, phases_ms=phases, metrics=metrics)
    if reading.oper_status in _OPER_DOWN:
        return ProbeResult(
            Outcome.DOWN,
            error=_OPER_DOWN[reading.oper_status],
            phases_ms=phases,
            metrics=metrics,
        )
    return ProbeResult(
        Outcome.UNKNOWN,
        error=f"ifOperStatus {reading.oper_status} (unknown) on ifIndex {reading.if_index}",
        phases_ms=phases,
        metrics=metrics,
    )
