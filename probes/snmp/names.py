"""Interfaces named by ifName, ifDescr or ifAlias: one device's naming columns.

A naming column is walked once and kept for `ttl_s`; `locate` then finds the ifIndex
carrying a name (or says why none, or too many do). The walk itself is the caller's,
handed in where a column is needed, so the only I/O here is the call it is given; the
clock is injectable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kernel.domain import Outcome
from kernel.formatting import count_of
from probes.snmp.mib import NAME_COLUMNS, Oid, text
from probes.snmp.targets import Ref, SnmpFailure, describe_ref
from probes.snmp.wire import Value

log = logging.getLogger(__name__)

Walk = Callable[[Oid], Awaitable[dict[int, Value]]]
"""ifIndex -> value of one IF-MIB column, from the device."""


@dataclass(slots=True)
class Names:
    fetched_at: float
    indexes: dict[str, list[int]]  # name -> ifIndexes carrying it
    count: int


class NameCache:
    """One device's naming columns: walked when asked for and stale, one walk at a time."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._names: dict[str, Names] = {}
        self._walking: dict[str, asyncio.Lock] = {}

    def clear(self) -> None:
        """Forget every column (the agent restarted: ifIndexes may have been renumbered)."""
        self._names.clear()

    async def get(self, kind: str, walk: Walk, *, fresh: bool, device: str) -> Names:
        """The `kind` column ("name", "descr", "alias"); walked again if `fresh`."""
        lock = self._walking.setdefault(kind, asyncio.Lock())
        asked_at = self._clock()
        async with lock:
            names = self._names.get(kind)
            # A walk that finished after we asked is as fresh as one we would start now.
            usable = names is not None and (
                names.fetched_at >= asked_at
                or (not fresh and asked_at - names.fetched_at < self._ttl_s)
            )
            if names is not None and usable:
                return names
            rows = await walk(NAME_COLUMNS[kind])
            indexes: dict[str, list[int]] = {}
            for if_index, value in rows.items():
                indexes.setdefault(text(value), []).append(if_index)
            names = Names(self._clock(), indexes, len(rows))
            self._names[kind] = names
            log.debug("snmp names walked device=%s column=%s rows=%d", device, kind, len(rows))
            return names


def locate(ref: Ref, names: Names, device: str) -> int | SnmpFailure:
    """The one ifIndex carrying the name `ref` gives, in its column `names`."""
    matches = names.indexes.get(str(ref[1]), [])
    if len(matches) == 1:
        return matches[0]
    if not matches:
        return SnmpFailure(
            Outcome.UNKNOWN,
            f"no interface with {describe_ref(ref)} on {device} "
            f"({count_of(names.count, 'interface')})",
        )
    return SnmpFailure(
        Outcome.UNKNOWN,
        f"{describe_ref(ref)} is ambiguous on {device}: ifIndex "
        f"{', '.join(map(str, matches))}; name the interface by index",
    )
