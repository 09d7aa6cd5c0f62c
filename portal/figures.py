"""SLA figures the portal shows, computed by `sla/` and shared through the page cache.

Callers pass contracts the viewer may already see; nothing here checks scope. Every
figure is the SLA engine's own (exact arithmetic, the contract's rules); the portal only
chooses which windows to ask for and formats the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import datetime
from typing import TypeVar

from aiohttp import web

from linkwatch.config import Contract
from portal.keys import CACHE, DATABASE, LIVE, SETTINGS
from sla.report import ContractWindow, contract_windows
from sla.windows import WindowKind, window_containing

T = TypeVar("T")


def ledger_freshness(app: web.Application) -> tuple[float, float]:
    """(ttl, stale) in seconds for anything read from the ledger: the daemon brings the
    running windows' rows up to date once per `notifications.evaluate_every`, and the
    cache must not add more than that period again on top (ttl + stale <= the period)."""
    period = app[LIVE].config.notifications.evaluate_every.total_seconds()
    ttl = min(app[SETTINGS].cache_ttl.total_seconds(), period)
    return ttl, max(period - ttl, 0.0)


async def from_ledger(app: web.Application, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
    """`load()` (a ledger read) through the page cache, fresh within `ledger_freshness`
    and bounded by the data timeout."""

    async def bounded() -> T:
        async with asyncio.timeout(app[SETTINGS].data_timeout.total_seconds()):
            return await load()

    ttl, stale = ledger_freshness(app)
    return await app[CACHE].get(key, bounded, ttl_s=ttl, stale_s=stale)


async def windows(
    app: web.Application,
    contracts: Sequence[Contract],
    kind: WindowKind,
    now: datetime,
    *,
    previous: bool = False,
    contractual_only: bool = False,
) -> list[ContractWindow]:
    """Each contract measured over the `kind` window running at `now` (or the one before,
    with `previous`), in its customer's zone. With `contractual_only`, contracts measured
    in other windows are left out, so every credit shown is one the contract pays."""
    config = app[LIVE].config
    by_label: dict[str, list[str]] = {}
    for contract in contracts:
        tz = config.customer(contract.customer).tz
        window = window_containing(kind, tz, now)
        if previous:
            window = window.previous()
        by_label.setdefault(window.label, []).append(contract.id)

    def loader(label: str, ids: tuple[str, ...]) -> Callable[[], Awaitable[list[ContractWindow]]]:
        async def load() -> list[ContractWindow]:
            async with asyncio.timeout(app[SETTINGS].data_timeout.total_seconds()):
                return await contract_windows(
                    app[DATABASE],
                    config,
                    label,
                    now,
                    contract_ids=ids,
                    any_kind=not contractual_only,
                )

        return load

    found: list[ContractWindow] = []
    for label, ids in sorted(by_label.items()):
        wanted = tuple(sorted(ids))
        key = ("windows", label, wanted, contractual_only)
        found += await app[CACHE].get(key, loader(label, wanted))
    order = {contract.id: i for i, contract in enumerate(contracts)}
    return sorted(found, key=lambda item: (order[item.contract.id], item.subject.id))
