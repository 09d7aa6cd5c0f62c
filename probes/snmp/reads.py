"""One batch of a device's probes answered: which GETs to send, and what to keep.

Interfaces named by ifName, ifDescr or ifAlias are located through the device's
`NameCache`. Each GET carries ``sysUpTime`` and, per interface, the seven IF-MIB objects
(more interfaces than the device's `max_interfaces` are split over several GETs, and an
agent that answers tooBig gets smaller ones from then on). Each poll also reads the
naming column for the cached ifIndex, so an ifIndex that moved (renumbering after a
reboot, a re-used alias) is noticed at once: the column is walked again and the
interface read again, in the same probe run. A varbind the agent refuses is dropped and
the rest asked again, so that no interface depends on another's counter.

The interpretation is `probes.snmp.interface` and `probes.snmp.counters`; here the
device's state (counters, sysUpTime, which interfaces have 64-bit counters) is updated
from their verdicts, and every request goes through the `Transport` handed in.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from kernel.domain import Outcome
from probes.snmp.counters import Snapshot, Uptime, judge_uptime
from probes.snmp.interface import Interface, read_interface
from probes.snmp.mib import (
    ALWAYS,
    NAME_COLUMNS,
    NARROW,
    SYS_UPTIME,
    WIDE,
    Oid,
    dotted,
    encoded,
    error_status_name,
)
from probes.snmp.names import NameCache, locate
from probes.snmp.targets import Reading, Ref, SnmpFailure, describe_ref
from probes.snmp.transport import Get, Peer, Transport

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Device:
    """What the poller keeps of one device between polls."""

    peer: Peer
    names: NameCache
    max_interfaces: int  # per GET; lowered when the agent answers tooBig
    counters: dict[int, Snapshot] = field(default_factory=dict)  # ifIndex -> last counters
    uptime: tuple[int, float] | None = None  # last (sysUpTime ticks, monotonic)
    uptime_frozen: bool = False  # sysUpTime stood still between polls
    wide: dict[int, bool] = field(default_factory=dict)  # ifIndex -> has 64-bit octets


Answers = dict[Ref | None, Reading | SnmpFailure]


async def answer(transport: Transport, device: Device, refs: set[Ref | None]) -> Answers:
    """A reading, or why not, for each interface named in `refs` (None: no interface)."""
    await transport.resolve(device.peer)
    answers: Answers = {}
    wanted: dict[Ref | None, int | None] = {}
    for ref, found in (await _locate(transport, device, refs, fresh=False)).items():
        if isinstance(found, SnmpFailure):
            answers[ref] = found
        else:
            wanted[ref] = found
    read, moved = await _read(transport, device, wanted)
    answers.update(read)
    if moved:
        # The cached ifIndex no longer carries that name: walk again, read again.
        log.info(
            "snmp interface moved, resolving again device=%s interfaces=%s",
            device.peer.key,
            ",".join(describe_ref(ref) for ref in moved),
        )
        wanted = {}
        for ref, found in (await _locate(transport, device, moved, fresh=True)).items():
            if isinstance(found, SnmpFailure):
                answers[ref] = found
            else:
                wanted[ref] = found
        read, still_moving = await _read(transport, device, wanted)
        answers.update(read)
        for ref in still_moving:
            answers[ref] = SnmpFailure(
                Outcome.UNKNOWN,
                f"{describe_ref(ref)} keeps moving between ifIndexes on {device.peer.key}",
            )
    return answers


async def _locate(
    transport: Transport, device: Device, refs: set[Ref | None] | set[Ref], *, fresh: bool
) -> dict[Ref | None, int | SnmpFailure | None]:
    located: dict[Ref | None, int | SnmpFailure | None] = {}
    walk = functools.partial(transport.walk, device.peer)
    label = str(device.peer.key)
    for ref in refs:
        if ref is None or ref[0] == "index":
            located[ref] = None if ref is None else int(ref[1])
            continue
        names = await device.names.get(ref[0], walk, fresh=fresh, device=label)
        located[ref] = locate(ref, names, label)
    return located


async def _read(
    transport: Transport, device: Device, wanted: Mapping[Ref | None, int | None]
) -> tuple[Answers, set[Ref]]:
    """Read every wanted interface (one GET per chunk); also which refs moved."""
    if not wanted:
        return {}, set()
    key = device.peer.key
    indexes = sorted({i for i in wanted.values() if i is not None})
    # The naming column of each name-resolved interface rides along, to see moves.
    checks: dict[int, set[str]] = {}
    for ref, if_index in wanted.items():
        if ref is not None and if_index is not None and ref[0] != "index":
            checks.setdefault(if_index, set()).add(ref[0])
    size = device.max_interfaces
    chunks = [indexes[i : i + size] for i in range(0, len(indexes), size)] or [[]]
    outcomes = await asyncio.gather(
        *(_read_chunk(transport, device, chunk, checks) for chunk in chunks),
        return_exceptions=True,
    )
    by_index: dict[int, Interface | SnmpFailure] = {}
    plain: Reading | SnmpFailure | None = None
    for chunk, outcome in zip(chunks, outcomes, strict=True):
        if isinstance(outcome, SnmpFailure):
            by_index.update(dict.fromkeys(chunk, outcome))
            plain = plain or outcome
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            by_index.update(outcome[0])
            if not isinstance(plain, Reading):
                plain = outcome[1]
    assert plain is not None
    results: Answers = {}
    moved: set[Ref] = set()
    for ref, if_index in wanted.items():
        if ref is None or if_index is None:
            results[ref] = plain
            continue
        found = by_index[if_index]
        if isinstance(found, SnmpFailure):
            results[ref] = found
        elif found.reading is None:  # noSuchInstance: no such ifIndex (any more)
            if ref[0] == "index":
                results[ref] = SnmpFailure(
                    Outcome.UNKNOWN, f"no interface with ifIndex {if_index} on {key}"
                )
            elif found.names.get(ref[0]) == str(ref[1]):
                # Still named so in ifXTable, only ifTable lacks the row: walking
                # again would find the same ifIndex, poll after poll.
                results[ref] = SnmpFailure(
                    Outcome.UNKNOWN,
                    f"{describe_ref(ref)} is ifIndex {if_index} in ifXTable, but "
                    f"ifTable has no such row on {key}: the agent gives no "
                    "status for it",
                )
            else:
                moved.add(ref)
        elif ref[0] != "index" and found.names.get(ref[0], str(ref[1])) != str(ref[1]):
            # (A naming column the agent failed to read is taken as unchanged.)
            moved.add(ref)
        else:
            results[ref] = found.reading
    return results, moved


async def _read_halves(
    transport: Transport, device: Device, chunk: list[int], checks: Mapping[int, set[str]]
) -> tuple[dict[int, Interface | SnmpFailure], Reading]:
    halves = await asyncio.gather(
        _read_chunk(transport, device, chunk[: len(chunk) // 2], checks),
        _read_chunk(transport, device, chunk[len(chunk) // 2 :], checks),
    )
    return {**halves[0][0], **halves[1][0]}, halves[0][1]


async def _read_chunk(
    transport: Transport, device: Device, chunk: list[int], checks: Mapping[int, set[str]]
) -> tuple[dict[int, Interface | SnmpFailure], Reading]:
    key = device.peer.key
    oids: list[Oid] = [SYS_UPTIME]
    for if_index in chunk:
        wide = device.wide.get(if_index)
        columns = (*ALWAYS, *(WIDE if wide is not False else ()), *(() if wide else NARROW))
        oids += [(*column, if_index) for column in columns]
        oids += [(*NAME_COLUMNS[kind], if_index) for kind in sorted(checks.get(if_index, ()))]
    got = await transport.get(device.peer, oids)
    if got.error_status == 1 and len(chunk) > 1:
        # tooBig: this agent takes fewer varbinds; remember it and split the chunk.
        device.max_interfaces = max(1, len(chunk) // 2)
        log.warning(
            "snmp agent answered tooBig, splitting requests device=%s interfaces=%d",
            key,
            device.max_interfaces,
        )
        return await _read_halves(transport, device, chunk, checks)
    failed: dict[bytes, str] = {}  # OID content -> the error the agent gave for it
    while got.error_status:
        status = error_status_name(got.error_status)
        if not 1 <= got.error_index <= len(oids):
            if len(chunk) > 1:  # it names no culprit: ask about the halves apart
                return await _read_halves(transport, device, chunk, checks)
            raise SnmpFailure(
                Outcome.UNKNOWN,
                f"agent {key} answered {status} (varbind {got.error_index})",
            )
        # One varbind the agent cannot read (genErr on a counter, noAccess) fails the
        # whole PDU: ask again without it, as net-snmp's snmpget does, so that no
        # interface depends on another's counter. Each round drops one varbind.
        culprit = oids.pop(got.error_index - 1)
        failed[encoded(culprit)[0]] = status
        log.debug(
            "snmp varbind failed, asking without it device=%s oid=%s error=%s",
            key,
            dotted(culprit),
            status,
        )
        if not oids:
            got = Get(0, 0, {}, got.round_trip_ms, got.received_at)
            break
        got = await transport.get(device.peer, oids)
    uptime = got.values.get(encoded(SYS_UPTIME)[0])
    ticks = _note_uptime(device, uptime if isinstance(uptime, int) else None, got.received_at)
    plain = Reading(
        device=str(key),
        round_trip_ms=got.round_trip_ms,
        uptime_s=uptime / 100.0 if isinstance(uptime, int) else None,
    )
    found: dict[int, Interface | SnmpFailure] = {}
    for if_index in chunk:
        interface = read_interface(
            if_index,
            got.values,
            failed,
            checks.get(if_index, ()),
            device.counters.get(if_index),
            ticks,
            plain,
            got.received_at,
        )
        _remember(device, if_index, interface)
        found[if_index] = interface
    return found, plain


def _remember(device: Device, if_index: int, interface: Interface | SnmpFailure) -> None:
    """Keep what the next poll of the interface needs."""
    if isinstance(interface, SnmpFailure):
        return
    if interface.reading is None:  # the ifIndex is gone: so are its counters
        device.counters.pop(if_index, None)
        device.wide.pop(if_index, None)
        return
    if interface.wide is not None:
        device.wide[if_index] = interface.wide
    if interface.snapshot is not None:
        device.counters[if_index] = interface.snapshot


def _note_uptime(device: Device, ticks: int | None, received_at: float) -> int | None:
    """Forget counters (and cached names) when the agent restarted since last time.

    Returns the ticks to take rates over: None while sysUpTime stands still (some
    agents' does), when our own clock serves instead.
    """
    if ticks is None:
        return None
    previous = device.uptime
    verdict = judge_uptime(previous, device.uptime_frozen, ticks, received_at)
    if verdict is Uptime.SAME_TICK:
        return ticks
    if verdict is Uptime.STANDS_STILL:
        if not device.uptime_frozen:
            device.uptime_frozen = True
            log.warning(
                "snmp agent's sysUpTime stands still, rates use our clock device=%s uptime_s=%.2f",
                device.peer.key,
                ticks / 100.0,
            )
        return None  # and keep when it was first seen, to tell it moving again
    device.uptime = (ticks, received_at)
    if verdict is Uptime.MOVES_AGAIN:
        device.uptime_frozen = False
        log.info("snmp agent's sysUpTime moves again device=%s", device.peer.key)
    elif verdict is Uptime.RESTARTED:
        assert previous is not None
        log.info(
            "snmp agent restarted, counters reset device=%s uptime_s=%.2f was_s=%.2f",
            device.peer.key,
            ticks / 100.0,
            previous[0] / 100.0,
        )
        device.counters.clear()
        device.names.clear()  # ifIndexes may have been renumbered
    return ticks
