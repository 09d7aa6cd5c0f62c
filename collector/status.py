"""Current status of probes and links, derived from their recent samples.

The rules are DESIGN.md's SLA semantics: a sample's outcome holds until the next sample
but never longer than `stale_after`; a probe is DOWN only after `confirm` consecutive
down samples, from the first of them, and an unconfirmed run of downs counts as UP; a
link is DOWN if any probe is DOWN. `probe_state` and `link_status` are pure; only
`current_link_states` reads the database. Nothing here writes, or computes availability
over a window (that is `sla/`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from psycopg.rows import tuple_row

from collector.database import Database
from collector.queries import query
from linkwatch.domain import LinkState, LinkStatus, Outcome, ProbeState, Sample

_STATUS_OF = {
    Outcome.UP: LinkStatus.UP,
    Outcome.DEGRADED: LinkStatus.DEGRADED,
    Outcome.DOWN: LinkStatus.DOWN,
    Outcome.UNKNOWN: LinkStatus.UNKNOWN,
}
_AVAILABLE = (LinkStatus.UP, LinkStatus.DEGRADED)
_MAX_SAMPLES_PER_PROBE = 10_000


class ProbeSpec(Protocol):
    """What status derivation needs to know about a probe (a config model fits)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def interval(self) -> timedelta: ...
    @property
    def confirm(self) -> int: ...
    @property
    def stale_after(self) -> timedelta | None: ...  # None: 3 x interval


class LinkSpec(Protocol):
    """What status derivation needs to know about a link (a config model fits)."""

    @property
    def id(self) -> str: ...
    @property
    def customer(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def probes(self) -> Sequence[ProbeSpec]: ...


def effective_stale_after(interval: timedelta, stale_after: timedelta | None) -> timedelta:
    return 3 * interval if stale_after is None else stale_after


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
    stale = effective_stale_after(interval, stale_after)
    samples = [s for s in samples_newest_last if s.observed_at <= now]
    if not samples:
        return ProbeState(probe_id, kind, LinkStatus.UNKNOWN, None, None)

    timeline = _timeline(samples, _effective_statuses(samples, confirm, stale), stale, now)
    status, since = timeline[-1]
    since_exact = len(timeline) > 1 or complete
    for index in range(len(timeline) - 2, -1, -1):
        earlier_status, earlier_start = timeline[index]
        if earlier_status is not status:
            break
        since = earlier_start
        since_exact = index > 0 or complete

    last = samples[-1]
    error = last.error
    if now - last.observed_at >= stale:
        error = f"no sample since {last.observed_at.isoformat()}"
    return ProbeState(
        probe_id=probe_id,
        kind=kind,
        status=status,
        since=since,
        last_observed_at=last.observed_at,
        rtt_ms=last.rtt_ms,
        loss_pct=last.loss_pct,
        error=error,
        since_exact=since_exact,
    )


def _effective_statuses(
    samples: Sequence[Sample], confirm: int, stale: timedelta
) -> list[LinkStatus]:
    """Each sample's status once confirmation is applied to runs of downs."""
    result: list[LinkStatus] = []
    i = 0
    while i < len(samples):
        if samples[i].outcome is not Outcome.DOWN:
            result.append(_STATUS_OF[samples[i].outcome])
            i += 1
            continue
        end = i
        # Downs are consecutive only without an UNKNOWN gap between them.
        while (
            end + 1 < len(samples)
            and samples[end + 1].outcome is Outcome.DOWN
            and samples[end + 1].observed_at - samples[end].observed_at <= stale
        ):
            end += 1
        run = end - i + 1
        result += [LinkStatus.DOWN if run >= confirm else LinkStatus.UP] * run
        i = end + 1
    return result


def _timeline(
    samples: Sequence[Sample], statuses: Sequence[LinkStatus], stale: timedelta, now: datetime
) -> list[tuple[LinkStatus, datetime]]:
    """(status, start) pieces up to `now`, with UNKNOWN where samples went stale."""
    pieces: list[tuple[LinkStatus, datetime]] = []
    for i, (sample, status) in enumerate(zip(samples, statuses, strict=True)):
        pieces.append((status, sample.observed_at))
        if i + 1 < len(samples):
            gone_stale = samples[i + 1].observed_at - sample.observed_at > stale
        else:
            # An outcome holds for [t, t + stale): at exactly t + stale it is UNKNOWN.
            gone_stale = now - sample.observed_at >= stale
        if gone_stale:
            pieces.append((LinkStatus.UNKNOWN, sample.observed_at + stale))
    return pieces


def link_status(
    probe_states: Sequence[ProbeState],
) -> tuple[LinkStatus, datetime | None, bool]:
    """A link's status, since when, and whether that start is exact (not a lower bound),
    from its probes' current states.

    DOWN if any probe is DOWN, since the earliest of their outages: that is exact. Else
    DEGRADED if an available probe is degraded (loss or RTT thresholds are the link's, so
    one probe crossing them is what the customer sees), UP if any probe is UP, else UNKNOWN.
    For these `since` is the latest change of any probe: without history that is the
    only time known to lie inside the current status, so it never overstates it.
    """
    down = [p for p in probe_states if p.status is LinkStatus.DOWN and p.since is not None]
    if down:
        first = min(down, key=_since)
        return LinkStatus.DOWN, first.since, first.since_exact
    if any(p.status is LinkStatus.DOWN for p in probe_states):
        return LinkStatus.DOWN, None, True
    statuses = {p.status for p in probe_states}
    if LinkStatus.DEGRADED in statuses:
        status = LinkStatus.DEGRADED
    elif LinkStatus.UP in statuses:
        status = LinkStatus.UP
    else:
        status = LinkStatus.UNKNOWN
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
    """The current state of each link, in the order given, from one query.

    Each probe's newest `confirm + history / interval` samples are read: enough for its
    status, and for `since` when the status began within `history`; an older start shows
    as the oldest sample read, with `since_exact` False. (Exact starts of long-running
    states will come from the stored state intervals.)
    """
    probes = [(link, probe) for link in links for probe in link.probes]
    limits = [_sample_limit(probe, history) for _, probe in probes]
    params: dict[str, Any] = {
        "link_ids": [link.id for link, _ in probes],
        "probe_ids": [probe.id for _, probe in probes],
        "limits": limits,
        "now": now,
    }
    recent: list[list[Sample]] = [[] for _ in probes]
    if probes:
        async with db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(query("recent_samples"), params)
            for ord_, observed_at, outcome, rtt_ms, loss_pct, error in await cur.fetchall():
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

    states_by_link: dict[int, list[ProbeState]] = {id(link): [] for link in links}
    for (link, probe), samples, limit in zip(probes, recent, limits, strict=True):
        states_by_link[id(link)].append(
            probe_state(
                samples,
                interval=probe.interval,
                confirm=probe.confirm,
                stale_after=probe.stale_after,
                now=now,
                kind=str(probe.kind),
                probe_id=probe.id,
                complete=len(samples) < limit,
            )
        )
    result = []
    for link in links:
        probe_states = tuple(states_by_link[id(link)])
        status, since, since_exact = link_status(probe_states)
        result.append(
            LinkState(
                link_id=link.id,
                customer_id=link.customer,
                description=link.description or "",
                status=status,
                since=since,
                probes=probe_states,
                since_exact=since_exact,
            )
        )
    return result


def _sample_limit(probe: ProbeSpec, history: timedelta) -> int:
    per_history = math.ceil(history / probe.interval) if probe.interval > timedelta(0) else 0
    return min(_MAX_SAMPLES_PER_PROBE, max(1, probe.confirm) + 1 + per_history)
