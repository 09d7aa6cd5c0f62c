"""Rates from interface counters, and what the agent's clock says about them: the rules.

Counters become rates between consecutive polls of the same (device, ifIndex), over the
agent's own clock (sysUpTime, so our scheduling delays do not distort them). Counter64
and Counter32 wraps are unwrapped, and told from resets by what the interface can carry;
`judge_uptime` tells an agent restart (sysUpTime went backwards, or advanced far less
than our clock) and a sysUpTime that stands still, for the caller to act on.

Pure functions of the values and times they are given: no I/O, no clock, no logging.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from probes.snmp.mib import COUNTERS, Oid
from probes.snmp.wire import Value

_SATURATED = (1 << 32) - 1  # ifSpeed of an interface faster than 4.29 Gbit/s
# The smallest Ethernet frame takes 84 octets on the wire (with preamble and gap): no
# interface counts more errors or discards per second than that many frames fill.
_MIN_FRAME_BITS = 84 * 8
_SLACK = 1.5  # agents' counters and sysUpTime are not sampled at one instant
_FROZEN_AFTER_S = 5.0  # sysUpTime unchanged over this much of our time: it stands still
_TICKS = 1 << 32  # TimeTicks wrap after 497 days


@dataclass(slots=True)
class Snapshot:
    """An interface's counters as one reply gave them."""

    ticks: int | None  # the agent's sysUpTime; None: rates use `at`
    at: float  # monotonic seconds when the reply arrived
    counters: dict[Oid, int]


def rates_between(
    previous: Snapshot | None, current: Snapshot, speed_bps: float | None = None
) -> dict[str, float]:
    """Metrics per second between two snapshots (and utilisation, with the speed)."""
    if previous is None:
        return {}
    seconds = elapsed(previous, current)
    if seconds <= 0:
        return {}
    found: dict[str, float] = {}
    for metric, column, modulus, octets in COUNTERS:
        old, new = previous.counters.get(column), current.counters.get(column)
        if old is None or new is None or metric in found:
            continue  # the 64-bit octet counters come first and win
        delta = new - old
        if delta < 0:
            # Wrapped, or reset (cleared by an operator, interface re-created, line card
            # swapped) with the agent up. A wrap implies at least as much as the rest of
            # the counter's range: more than the interface can carry means a reset.
            delta += modulus
            if speed_bps:
                # In octets, or in frames for errors and discards.
                limit = _SLACK * speed_bps * seconds / (8 if octets else _MIN_FRAME_BITS)
                if delta > limit:
                    continue
            elif delta > modulus // 2 or not octets:
                # Speed unknown: only a counter half its range back can be a wrap, and an
                # error or discard counter that wraps between two polls is not plausible.
                continue
        found[metric] = (8.0 if octets else 1.0) * delta / seconds
    if speed_bps:
        for direction in ("in", "out"):
            bps = found.get(f"{direction}_bps")
            if bps is not None:
                found[f"{direction}_utilisation_pct"] = 100.0 * bps / speed_bps
    return found


def elapsed(previous: Snapshot, current: Snapshot) -> float:
    """Seconds between two snapshots, on the agent's clock where both have it."""
    if previous.ticks is not None and current.ticks is not None:
        return ((current.ticks - previous.ticks) % _TICKS) / 100.0
    return current.at - previous.at


def speed_bps(speed: Value, high_speed: Value) -> float | None:
    """The interface's speed: ifSpeed, or ifHighSpeed (Mbit/s) where ifSpeed saturates."""
    if (
        isinstance(high_speed, int)
        and high_speed > 0
        and (not isinstance(speed, int) or speed >= _SATURATED or speed <= 0)
    ):
        return high_speed * 1_000_000.0
    if isinstance(speed, int) and speed > 0:
        return float(speed)
    return None


class Uptime(Enum):
    """What a new sysUpTime says, against the last one that moved."""

    SAME_TICK = "same-tick"  # two polls inside one tick
    STANDS_STILL = "stands-still"  # unchanged for longer than a tick: rates use our clock
    MOVES_AGAIN = "moves-again"  # it stood still, and now moves
    ADVANCED = "advanced"  # as expected
    RESTARTED = "restarted"  # the agent restarted since: its counters started afresh


def judge_uptime(last: tuple[int, float] | None, frozen: bool, ticks: int, now: float) -> Uptime:
    """Judge `ticks` received at `now` (monotonic s) after `last` (ticks, monotonic s).

    `frozen`: the sysUpTime was already found standing still.
    """
    if last is not None and ticks == last[0]:
        return Uptime.SAME_TICK if now - last[1] < _FROZEN_AFTER_S else Uptime.STANDS_STILL
    if frozen:
        return Uptime.MOVES_AGAIN
    if last is None:
        return Uptime.ADVANCED
    old_ticks, old_at = last
    local_s = now - old_at
    agent_s = ((ticks - old_ticks) % _TICKS) / 100.0
    slack_s = max(5.0, 0.2 * local_s)
    wrapped = ticks < old_ticks
    # Backwards is a restart unless it is the 497-day wrap (agent time then still
    # matches ours); forwards but far slower than our clock is a restart since the
    # last poll that has been up less time than passed.
    restarted = (wrapped and abs(agent_s - local_s) > slack_s) or (
        not wrapped and agent_s < local_s - slack_s
    )
    return Uptime.RESTARTED if restarted else Uptime.ADVANCED
