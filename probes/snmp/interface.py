"""One interface's varbinds, read as the probe's `Reading`: the rules.

Given what one GET answered for an ifIndex (and which varbinds the agent refused), say
whether the interface exists, its status, its speed, its rates against the previous
snapshot, and what the caller should remember for the next poll (the new snapshot,
whether the interface has 64-bit counters). Pure: the caller keeps the state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kernel.domain import Outcome
from probes.snmp.counters import Snapshot, elapsed, rates_between, speed_bps
from probes.snmp.mib import (
    COUNTERS,
    IF_ADMIN_STATUS,
    IF_HC_IN_OCTETS,
    IF_HIGH_SPEED,
    IF_OPER_STATUS,
    IF_SPEED,
    NAME_COLUMNS,
    Oid,
    encoded,
    show,
    text,
)
from probes.snmp.targets import Reading, SnmpFailure
from probes.snmp.wire import Missing, Value


@dataclass(frozen=True, slots=True)
class Interface:
    """What one GET said about one interface, and what to remember of it."""

    reading: Reading | None  # None: noSuchInstance, the ifIndex does not exist (any more)
    names: dict[str, str]  # naming columns read along, to notice an ifIndex that moved
    wide: bool | None = None  # it has 64-bit octet counters; None: the reply did not say
    snapshot: Snapshot | None = None  # to rate the next poll against; None: keep the older


def read_interface(
    if_index: int,
    values: Mapping[bytes, Value],
    failed: Mapping[bytes, str],
    name_kinds: Iterable[str],
    previous: Snapshot | None,
    ticks: int | None,
    plain: Reading,
    received_at: float,
) -> Interface | SnmpFailure:
    """Interface `if_index` in a GET's `values` (keyed by OID content bytes).

    `failed`: the varbinds the agent refused, with its error; `name_kinds`: the naming
    columns that rode along; `plain`: the reading without an interface (device, round
    trip, sysUpTime); `ticks`: the sysUpTime to take rates over (None: `received_at`).
    """

    def value(column: Oid) -> Value:
        return values.get(encoded((*column, if_index))[0])

    names = {
        kind: text(value(NAME_COLUMNS[kind]))
        for kind in name_kinds
        if encoded((*NAME_COLUMNS[kind], if_index))[0] not in failed
    }
    oper, admin = value(IF_OPER_STATUS), value(IF_ADMIN_STATUS)
    error = failed.get(encoded((*IF_OPER_STATUS, if_index))[0])
    if error is not None:
        return SnmpFailure(
            Outcome.UNKNOWN,
            f"agent {plain.device} answered {error} for ifOperStatus of ifIndex {if_index}",
        )
    if oper is Missing.NO_SUCH_INSTANCE or oper is Missing.END_OF_MIB_VIEW:
        return Interface(None, names)
    if not isinstance(oper, int):
        return SnmpFailure(
            Outcome.UNKNOWN,
            f"agent {plain.device} gives no ifOperStatus for ifIndex {if_index} "
            f"({show(oper)}); does it implement IF-MIB, and may this community or "
            "user read it?",
        )
    hc_in = value(IF_HC_IN_OCTETS)
    wide: bool | None = None  # not asked (known to be absent), or no value came back
    if isinstance(hc_in, int):
        wide = True
    elif isinstance(hc_in, Missing):  # asked, and the agent has no such counter
        wide = False
    counters = {c: v for _, c, _, _ in COUNTERS if isinstance(v := value(c), int)}
    current = Snapshot(ticks, received_at, counters)
    speed = speed_bps(value(IF_SPEED), value(IF_HIGH_SPEED))
    metrics = rates_between(previous, current, speed)
    metrics["if_index"] = float(if_index)
    if speed is not None:
        metrics["speed_bps"] = speed
    reading = Reading(
        device=plain.device,
        round_trip_ms=plain.round_trip_ms,
        uptime_s=plain.uptime_s,
        if_index=if_index,
        oper_status=oper,
        admin_status=admin if isinstance(admin, int) else None,
        metrics=metrics,
    )
    # Two polls inside one clock tick: keep the older snapshot for the next rate.
    keep = previous is None or elapsed(previous, current) > 0
    return Interface(reading, names, wide, current if keep else None)
