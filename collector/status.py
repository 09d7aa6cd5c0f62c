"""Current status of probes and links, from their recent samples and the stored intervals.

The rules are the SLA semantics (docs/design.md) as `collector.intervals` implements them:
`probe_state` runs `derive_probe_intervals` over a probe's recent samples and reads the
status at `now`; `link_status` combines probe states with `vote`. Only
`current_link_states` reads the database: the newest samples for the status, and the
stored intervals for an exact start of a state older than those samples. Nothing here
writes, or computes availability over a window (that is `sla/`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.intervals import ProbeSpec as DerivationProbeSpec
from collector.intervals import (
    derive_probe_intervals,
    effective_stale_after,
    vote,
)
from collector.queries import query
from kernel.config.sites import base_probe_id
from kernel.domain import LinkState, LinkStatus, Outcome, ProbeState, Sample

__all__ = [
    "LinkSpec",
    "ProbeSpec",
    "current_link_states",
    "effective_stale_after",
    "link_status",
    "probe_state",
]

_MAX_SAMPLES_PER_PROBE = 10_000


class ProbeSpec(DerivationProbeSpec, Protocol):
    """What current status needs to know about a probe (a config model fits)."""

    @property
    def kind(self) -> str: ...


class LinkSpec(Protocol):
    """What current status needs to know about a link (a config model fits)."""

    @property
    def id(self) -> str: ...
    @property
    def customer(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def probes(self) -> Sequence[ProbeSpec]: ...


def probe_state(
    samples_newest_last: Sequence[Sample],
    *,
    interval: timedelta,
    confirm: int,
    stale_after: timedelta | None,
    now: datetime,
    kind: str,
    probe_id: str,
    complete: bool = True,
) -> ProbeState:
    """A probe's status at `now` from its samples, oldest first.

    `complete` says the samples reach back to the probe's first one. When they do not
    and the current status runs back to the oldest sample given, `since` is that
    sample's time and `since_exact` is False: the status began then or earlier.
    Samples after `now` are ignored.
    """
    if confirm < 1:
        raise ValueError("confirm must be at least 1")
    samples = [s for s in samples_newest_last if s.observed_at <= now]
    if not samples:
        return ProbeState(probe_id, kind, LinkStatus.UNKNOWN, None, None)

    intervals = derive_probe_intervals(
        samples, interval=interval, confirm=confirm, stale_after=stale_after
    )
    # The last sample is at or before `now`, so some interval contains it.
    index = next(i for i, piece in enumerate(intervals) if piece.contains(now))
    current = intervals[index]

    last = samples[-1]
    error = last.error
    if now - last.observed_at >= effective_stale_after(interval, stale_after):
        error = f"no sample since {last.observed_at.isoformat()}"
    return ProbeState(
        probe_id=probe_id,
        kind=kind,
        status=current.status,
        since=current.starts_at,
        last_observed_at=last.observed_at,
        rtt_ms=last.rtt_ms,
        loss_pct=last.loss_pct,
        error=error,
        since_exact=index > 0 or complete,
    )


def link_status(
    probe_states: Sequence[ProbeState], quorum: int = 1
) -> tuple[LinkStatus, datetime | None, bool]:
    """A link's status, since when, and whether that start is exact (not a lower bound),
    from its availability measurements' current states.

    The status is their `vote` with `quorum` (one site per probe: `combine_statuses`).
    DOWN is since the earliest outage of a probe that is down, a probe's outage being
    since its sites reached the quorum (the `quorum`-th of their outages to begin): that
    is exact. For the others `since` is the latest change of any measurement: without
    history that is the only time known to lie inside the current status, so it never
    overstates it (`current_link_states` uses the stored link intervals, which know the
    real start).
    """
    status = vote(((base_probe_id(p.probe_id), p.status) for p in probe_states), quorum)
    by_probe: dict[str, list[ProbeState]] = {}
    for state in probe_states:
        if state.status is LinkStatus.DOWN and state.since is not None:
            by_probe.setdefault(base_probe_id(state.probe_id), []).append(state)
    # Each probe down by the vote: since its quorum-th site went down.
    down = [
        sorted(sites, key=_since)[quorum - 1] for sites in by_probe.values() if len(sites) >= quorum
    ]
    if down:
        first = min(down, key=_since)
        return LinkStatus.DOWN, first.since, first.since_exact
    if status is LinkStatus.DOWN:
        return LinkStatus.DOWN, None, True
    known = [p for p in probe_states if p.since is not None]
    if not known:
        return status, None, True
    latest = max(known, key=_since)
    return status, latest.since, latest.since_exact


def _since(state: ProbeState) -> datetime:
    assert state.since is not None
    return state.since


async def current_link_states(
    db: Database,
    links: Sequence[LinkSpec],
    now: datetime,
    *,
    history: timedelta = timedelta(hours=1),
) -> list[LinkState]:
    """The current state of each link, in the order given.

    Each probe's newest `confirm + history / interval` samples are read: enough for its
    status, and for `since` when the status began within `history`. The link's status
    counts its availability probes only. Where the stored intervals include every sample
    read and agree on the status at `now`, their start is used: exact however long ago
    the state began. Otherwise an older start shows as the oldest sample read, with
    `since_exact` False.
    """
    probes = [(link, probe) for link in links for probe in link.probes]
    limits = [_sample_limit(probe, history) for _, probe in probes]
    params: dict[str, Any] = {
        "link_ids": [link.id for link, _ in probes],
        "probe_ids": [probe.id for _, probe in probes],
        "limits": limits,
        "now": now,
    }
    stored_probes: list[tuple[LinkStatus | None, datetime | None, datetime | None]] = []
    stored_links: dict[str, tuple[LinkStatus, datetime]] = {}
    if probes:
        async with db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(query("recent_samples"), params)
            rows = await cur.fetchall()
            stored_probes, stored_links = await _stored_at(cur, params, now)
    else:
        rows = []
    # Deriving 10,000 links' states takes CPU seconds: off the event loop, so that the
    # process keeps serving (the portal) and probing (the scheduler) meanwhile.
    return await asyncio.to_thread(
        _derive, links, probes, limits, rows, stored_probes, stored_links, now
    )


def _derive(
    links: Sequence[LinkSpec],
    probes: Sequence[tuple[LinkSpec, ProbeSpec]],
    limits: Sequence[int],
    rows: Sequence[tuple[Any, ...]],
    stored_probes: Sequence[tuple[LinkStatus | None, datetime | None, datetime | None]],
    stored_links: dict[str, tuple[LinkStatus, datetime]],
    now: datetime,
) -> list[LinkState]:
    recent: list[list[Sample]] = [[] for _ in probes]
    for ord_, observed_at, outcome, rtt_ms, loss_pct, error in rows:
        link, probe = probes[ord_ - 1]
        recent[ord_ - 1].append(
            Sample(
                link_id=link.id,
                probe_id=probe.id,
                observed_at=observed_at,
                outcome=Outcome(outcome),
                rtt_ms=rtt_ms,
                loss_pct=loss_pct,
                error=error,
            )
        )

    states_by_link: dict[int, list[tuple[ProbeSpec, ProbeState, bool]]] = {
        id(link): [] for link in links
    }
    for index, ((link, probe), samples, limit) in enumerate(
        zip(probes, recent, limits, strict=True)
    ):
        state = probe_state(
            samples,
            interval=probe.interval,
            confirm=probe.confirm,
            stale_after=probe.stale_after,
            now=now,
            kind=str(probe.kind),
            probe_id=probe.id,
            complete=len(samples) < limit,
        )
        fresh = True
        if stored_probes:
            stored_status, stored_since, derived_through = stored_probes[index]
            # Stored intervals that include every sample read are the same derivation
            # over the whole history; ones that lag behind the samples are not used.
            fresh = state.last_observed_at is None or (
                derived_through is not None and derived_through >= state.last_observed_at
            )
            if (
                fresh
                and stored_status is state.status
                and stored_since is not None
                and state.since is not None
                and stored_since <= state.since
            ):
                state = replace(state, since=stored_since, since_exact=True)
        states_by_link[id(link)].append((probe, state, fresh))

    result = []
    for link in links:
        entries = states_by_link[id(link)]
        counted = [entry for entry in entries if entry[0].availability]
        status, since, since_exact = link_status(
            [state for _, state, _ in counted], getattr(link, "quorum", 1)
        )
        stored = stored_links.get(link.id)
        if (
            stored is not None
            and counted
            and all(fresh for _, _, fresh in counted)
            and stored[0] is status
            and (since is None or stored[1] <= since)
        ):
            # The stored link interval knows when this status really began (a status
            # change of the link, not merely the latest change of one of its probes).
            since, since_exact = stored[1], True
        result.append(
            LinkState(
                link_id=link.id,
                customer_id=link.customer,
                description=link.description or "",
                status=status,
                since=since,
                probes=tuple(state for _, state, _ in entries),
                since_exact=since_exact,
            )
        )
    return result


async def _stored_at(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], params: dict[str, Any], now: datetime
) -> tuple[
    list[tuple[LinkStatus | None, datetime | None, datetime | None]],
    dict[str, tuple[LinkStatus, datetime]],
]:
    """Each probe's stored (status, start, derived_through) at `now`, and each link's
    stored (status, start) at `now`."""
    pairs = {"link_ids": params["link_ids"], "probe_ids": params["probe_ids"], "at": now}
    await cur.execute(query("states_probe_at"), pairs)
    probes: list[tuple[LinkStatus | None, datetime | None, datetime | None]] = [
        (None, None, None) for _ in params["probe_ids"]
    ]
    for ord_, status, starts_at, derived_through in await cur.fetchall():
        stored = None if status is None else LinkStatus(status)
        probes[ord_ - 1] = (stored, starts_at, derived_through)
    await cur.execute(
        query("states_link_at"), {"link_ids": sorted(set(params["link_ids"])), "at": now}
    )
    links = {
        link_id: (LinkStatus(status), starts_at)
        for link_id, status, starts_at in await cur.fetchall()
    }
    return probes, links


def _sample_limit(probe: ProbeSpec, history: timedelta) -> int:
    per_history = math.ceil(history / probe.interval) if probe.interval > timedelta(0) else 0
    return min(_MAX_SAMPLES_PER_PROBE, max(1, probe.confirm) + 1 + per_history)
