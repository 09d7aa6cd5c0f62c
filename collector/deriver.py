"""Keep the stored `probe_states` / `link_states` rows equal to a full derivation.

`StateDeriver` re-derives, after each batch of samples, only from a safe anchor before
the batch's earliest sample (`collector.intervals`), one transaction per call under an
advisory lock per link; `derive_within` does the same inside a caller's transaction (an
import). A probe whose derivation fails (a stored sample no interval can hold, any
exception but a database outage) is left out and recorded in `state_failures`; it never
stops the other probes and links from being derived.

A rewrite that reaches a link's live edge also writes the outbox events of outages
beginning and ending there (`collector.outage_events`), in the same transaction: the
call is in `_rewrite_on`, after the link rows. Nothing here reads a clock or writes
samples. The stored rows are a cache of a pure function of the samples: any rewrite must
leave them equal to a full rebuild.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import psycopg
from psycopg.rows import tuple_row

from collector.database import Database
from collector.intervals import (
    Interval,
    LinkSpec,
    Observation,
    ProbeSpec,
    ProbeTimeline,
    anchor_before,
    anchor_from,
    clip_intervals,
    derive_link_intervals,
    derive_probe_intervals,
    effective_stale_after,
    later,
    splice_intervals,
)
from collector.outage_events import write_outage_events
from collector.queries import query
from collector.state_reads import state_failures
from kernel.domain import LinkStatus, Outcome, Sample
from kernel.errors import DatabaseError
from kernel.logs import quoted
from kernel.progress import Progress

logger = logging.getLogger(__name__)


_Key = tuple[str, str]  # (link_id, probe_id)


# The advisory lock class for "rewriting one link's intervals" ("LWS"); the object id is
# hashtext(link_id). Two-key advisory locks never collide with migrate.py's bigint key.
_LOCK_CLASS = 0x4C5753


class _Observed(NamedTuple):
    """A stored sample as derivation reads it: a tuple, cheap for a long history."""

    link_id: str
    probe_id: str
    observed_at: datetime
    outcome: Outcome
    error: str | None


@dataclass
class _Work:
    """One probe to re-derive: from the anchor before `bound`, up to the anchor at or
    after `until` (None: to the end of its samples)."""

    link: LinkSpec
    probe: ProbeSpec
    bound: datetime
    until: datetime | None = None
    # Stop at the anchor after `until` even where no stored interval reaches it, leaving
    # the rest for the next slice (a first derivation of a long history, in slices).
    slice_only: bool = False
    # Filled in as the work proceeds:
    start: datetime | None = None  # where the new intervals begin to replace the old
    grounded: bool = False  # no samples before `start`: the timeline begins there
    continues_confirmed_run: bool = False
    end: datetime | None = None  # where they stop (None: to the end)
    end_error: str | None = None
    samples: list[_Observed] = field(default_factory=list)

    @property
    def stale(self) -> timedelta:
        return effective_stale_after(self.probe.interval, self.probe.stale_after)


@dataclass
class _Pass:
    """What one rewrite transaction did, for logs and reports."""

    samples_read: int = 0
    probe_rows_deleted: int = 0
    probe_rows_inserted: int = 0
    link_rows_deleted: int = 0
    link_rows_inserted: int = 0
    transitions: list[tuple[str, Interval]] = field(default_factory=list)
    # Links whose rewrite reached the end of their timeline, with their latest status.
    live_edges: list[tuple[LinkSpec, Interval]] = field(default_factory=list)
    events: int = 0  # outbox events written

    def absorb(self, other: _Pass) -> None:
        """Count `other`'s work in this one (several rewrites reported as one)."""
        self.samples_read += other.samples_read
        self.probe_rows_deleted += other.probe_rows_deleted
        self.probe_rows_inserted += other.probe_rows_inserted
        self.link_rows_deleted += other.link_rows_deleted
        self.link_rows_inserted += other.link_rows_inserted
        self.transitions += other.transitions
        self.live_edges += other.live_edges
        self.events += other.events


def _database_outage(exc: BaseException) -> bool:
    """Whether a failure is the database's, to be retried with the whole batch, rather
    than one that the stored data causes and would cause again.

    A DatabaseError is an outage unless psycopg refused a value (DataError,
    IntegrityError): that is a row that fails every time, like any other exception."""
    if not isinstance(exc, DatabaseError | psycopg.OperationalError | psycopg.InterfaceError):
        return False
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, psycopg.DataError | psycopg.IntegrityError):
            return False
        cause = cause.__cause__
    return True


def _failure_text(exc: BaseException) -> str:
    """`exc` as one printable line (a terminal shows it, PostgreSQL stores it: no NUL,
    no escape sequence), cut at 500 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if not text.isprintable():
        text = "".join(
            char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
            for char in text
        )
    return text if len(text) <= 500 else text[:497] + "..."


class StateDeriver:
    """Keeps the stored intervals of the configured links equal to a full derivation.

    Call `samples_stored(batch)` after every committed batch of samples, live or
    replayed, in any order, late or duplicated; and `catch_up()` once at start-up. Each
    call re-derives only what the batch can change: for each probe, from the latest
    safe anchor before its earliest new sample (at most `confirm` samples back) to its
    newest sample, then the link over the same range, in one transaction per call that
    holds an advisory lock per link. Samples of links or probes not configured are ignored.

    No stored sample stops the others from being derived. When a derivation fails other
    than by a database outage (any exception: a sample no interval can hold, a bug), the
    links are derived one by one, and a link's probes one by one, so that only the probe
    that fails alone is left out. Its failure is logged once, recorded in
    `state_failures` (see `state_failures()`), and the probe is derived on its own with
    each batch that brings samples of it, from where it first failed, until it succeeds
    and the record is removed: at its probe's cadence, never in a loop of its own.
    """

    def __init__(
        self,
        db: Database,
        links: Sequence[LinkSpec],
        *,
        catch_up_slice: timedelta = timedelta(days=7),
    ) -> None:
        if catch_up_slice <= timedelta(0):
            raise ValueError("catch_up_slice must be positive")
        self._db = db
        self._catch_up_slice = catch_up_slice
        self._specs: dict[_Key, tuple[LinkSpec, ProbeSpec]] = {
            (link.id, probe.id): (link, probe) for link in links for probe in link.probes
        }
        # Earliest sample per probe of calls that failed: the next call derives them too.
        self._pending: dict[_Key, datetime] = {}
        # Probes that failed in this process, and from where they are still to derive.
        self._failing: dict[_Key, datetime] = {}
        # Probes with a row in state_failures, as far as this deriver knows (None: not
        # read yet): another process, or an earlier run, may have recorded them.
        self._recorded: set[_Key] | None = None
        self.ignored = 0  # samples of links or probes that are not configured

    def update(self, links: Sequence[LinkSpec]) -> None:
        """Take a new configuration (a reload): from the next batch on, added links and
        probes get states, changed probes are derived by their new rules (the stored
        history stays as its own rules made it), and removed ones are ignored."""
        self._specs = {
            (link.id, probe.id): (link, probe) for link in links for probe in link.probes
        }
        self._pending = {key: at for key, at in self._pending.items() if key in self._specs}
        self._failing = {key: at for key, at in self._failing.items() if key in self._specs}

    @property
    def failing(self) -> frozenset[tuple[str, str]]:
        """(link id, probe id) of the probes that failed to derive in this process."""
        return frozenset(self._failing)

    async def samples_stored(self, batch: Sequence[Sample]) -> None:
        """Re-derive what `batch` (already committed) can change.

        Raises DatabaseError when the database fails; the batch is then kept and derived
        with the next call, so a writer may also simply call again with the same batch.
        Any other failure is confined to the probes it comes from (see the class).
        """
        earliest: dict[_Key, datetime] = {}
        for sample in batch:
            key = (sample.link_id, sample.probe_id)
            if key not in self._specs:
                self.ignored += 1
                logger.debug("sample of an unconfigured probe ignored link=%s probe=%s", *key)
                continue
            if key not in earliest or sample.observed_at < earliest[key]:
                earliest[key] = sample.observed_at
        await self.changed_from(earliest)

    async def samples_announced(self, announced: Mapping[_Key, datetime]) -> None:
        """Re-derive what probe agents stored (`collector.agents.claim_announced`): each
        (link, probe) from its earliest announced sample on. Announcements of probes not
        configured here are ignored; failures as in `samples_stored` (on a database
        outage they are kept and derived with the next call, which may bring nothing)."""
        known = {key: at for key, at in announced.items() if key in self._specs}
        self.ignored += len(announced) - len(known)
        await self.changed_from(known)

    @property
    def pending(self) -> bool:
        """Whether a failed call left probes to derive with the next one."""
        return bool(self._pending)

    async def changed_from(self, changes: dict[_Key, datetime]) -> None:
        """Re-derive each (link, probe) of `changes` from its time on: samples there were
        stored, replaced or deleted. Failures as in `samples_stored`."""
        earliest, self._pending = self._pending, {}
        for key, at in changes.items():
            if key in self._specs and (key not in earliest or at < earliest[key]):
                earliest[key] = at
        if not earliest:
            return
        for key, bound in self._failing.items():
            if key in earliest and bound < earliest[key]:
                earliest[key] = bound
        try:
            done = await self._derive(earliest)
        except BaseException:
            for key, bound in earliest.items():
                if key not in self._pending or bound < self._pending[key]:
                    self._pending[key] = bound
            raise
        for link_id, interval in done.transitions:
            logger.info(
                "link state changed link=%s status=%s since=%s",
                link_id,
                interval.status.value,
                interval.starts_at.isoformat(),
            )
        logger.debug(
            "states derived probes=%d samples_read=%d probe_rows=-%d+%d link_rows=-%d+%d events=%d",
            len(earliest),
            done.samples_read,
            done.probe_rows_deleted,
            done.probe_rows_inserted,
            done.link_rows_deleted,
            done.link_rows_inserted,
            done.events,
        )

    async def _derive(self, earliest: dict[_Key, datetime]) -> _Pass:
        """Derive the probes from their bounds: those not known to fail in one rewrite,
        each link with a failing probe in one of its own."""
        recorded = await self._recorded_failures()
        suspects = self._failing.keys() | recorded
        groups = [{key: bound for key, bound in earliest.items() if key not in suspects}]
        per_link: dict[str, dict[_Key, datetime]] = defaultdict(dict)
        for key, bound in earliest.items():
            if key in suspects:
                per_link[key[0]][key] = bound
        groups += per_link.values()
        done = _Pass()
        for group in groups:
            if group:
                await self._derive_isolating(group, done)
        return done

    async def _derive_isolating(self, group: dict[_Key, datetime], done: _Pass) -> None:
        works = [_Work(*self._specs[key], bound=bound) for key, bound in group.items()]
        try:
            result = await _rewrite(self._db, works)
        except Exception as exc:
            if _database_outage(exc):
                raise
            parts = _split(group)
            if not parts:
                [(key, bound)] = group.items()
                await self._failed(key, bound, exc)
                return
            logger.debug(
                "state derivation failed, deriving its parts one by one probes=%d cause=%s",
                len(group),
                quoted(_failure_text(exc)),
            )
            for part in parts:
                await self._derive_isolating(part, done)
            return
        done.absorb(result)
        await self._derived(list(group))

    async def _recorded_failures(self) -> set[_Key]:
        if self._recorded is None:
            self._recorded = {(f.link_id, f.probe_id) for f in await state_failures(self._db)}
        return self._recorded

    async def _failed(self, key: _Key, bound: datetime, exc: Exception) -> None:
        """Record that `key` cannot be derived from `bound`; log it once."""
        error = _failure_text(exc)
        async with self._db.connection() as conn:
            await conn.execute(
                query("state_failures_set"), {"link_id": key[0], "probe_id": key[1], "error": error}
            )
        first = key not in self._failing
        self._failing[key] = min(bound, self._failing.get(key, bound))
        (await self._recorded_failures()).add(key)
        if first:
            logger.error(
                "link states cannot be derived, its other probes and links go on; see "
                "linkwatch db stats link=%s probe=%s from=%s cause=%s",
                quoted(key[0]),
                quoted(key[1]),
                bound.isoformat(),
                quoted(error, limit=500),
            )
            logger.debug("state derivation failure link=%s probe=%s", *key, exc_info=exc)
        else:
            logger.debug(
                "link states still cannot be derived link=%s probe=%s cause=%s",
                quoted(key[0]),
                quoted(key[1]),
                quoted(error, limit=500),
            )

    async def _derived(self, keys: Sequence[_Key]) -> None:
        """`keys` derived: any failure recorded of them is over."""
        recorded = await self._recorded_failures()
        over = [key for key in keys if key in self._failing or key in recorded]
        if not over:
            return
        async with self._db.connection() as conn:
            await conn.execute(
                query("state_failures_clear"),
                {"link_ids": [k[0] for k in over], "probe_ids": [k[1] for k in over]},
            )
        for key in over:
            self._failing.pop(key, None)
            recorded.discard(key)
            logger.info(
                "link states derived again link=%s probe=%s", quoted(key[0]), quoted(key[1])
            )

    async def catch_up(self) -> int:
        """Derive each probe's samples newer than the newest its intervals include (all
        of them the first time); return how many probes needed it.

        Covers samples committed while no deriver ran: by an older version, a demo history
        load, or before a process was killed between a write and its `samples_stored`
        (late samples older than the progress mark that were never announced are not
        found: `rebuild_states` recomputes a range). Safe while live batches arrive.
        A probe that fails is recorded and left for the live batches (see the class);
        the failures recorded of probes no longer configured are dropped.
        """
        keys = list(self._specs)
        async with self._db.connection() as conn:
            await conn.execute(
                query("state_failures_forget_unconfigured"),
                {"link_ids": [k[0] for k in keys], "probe_ids": [k[1] for k in keys]},
            )
        self._recorded = None  # read again below
        await self._recorded_failures()
        if not keys:
            return 0
        async with self._db.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(
                query("states_underived"),
                {"link_ids": [k[0] for k in keys], "probe_ids": [k[1] for k in keys]},
            )
            rows = await cur.fetchall()
        behind = {keys[ord_ - 1]: first for ord_, first in rows if first is not None}
        for key, first in behind.items():
            # A first derivation of a long history goes in slices, a transaction each,
            # so memory stays bounded; progress is kept per slice, so a restart resumes.
            bound: datetime | None = first
            try:
                while bound is not None:
                    work = _Work(
                        *self._specs[key],
                        bound=bound,
                        # A slice reaching past END_OF_TIME is the last one: to the end.
                        until=later(bound, self._catch_up_slice),
                        slice_only=True,
                    )
                    await _rewrite(self._db, [work])
                    bound = work.end
            except Exception as exc:
                if _database_outage(exc) or bound is None:
                    raise
                await self._failed(key, bound, exc)
                continue
            await self._derived([key])
        if behind:
            logger.info("states caught up probes=%d", len(behind))
        return len(behind)


def _split(group: dict[_Key, datetime]) -> list[dict[_Key, datetime]]:
    """A failed group's parts to derive alone: its links, or one link's probes."""
    links = sorted({key[0] for key in group})
    if len(links) > 1:
        return [{k: b for k, b in group.items() if k[0] == link} for link in links]
    if len(group) > 1:
        return [{key: bound} for key, bound in group.items()]
    return []


async def derive_range(
    db: Database,
    links: Sequence[LinkSpec],
    start: datetime,
    end: datetime,
    *,
    chunk: timedelta,
    progress: Progress | None = None,
) -> int:
    """Re-derive `links` from the safe anchor before `start` to the safe anchor at or
    after `end`, one `chunk` per transaction under the links' locks; return the samples
    read. What `collector.rebuild.rebuild_states` runs between its two looks; `progress`
    counts the transactions."""
    progress = progress or Progress()
    per_link = math.ceil((end - start) / chunk)
    progress.stage("deriving states", len(links) * per_link)
    samples_read = 0
    for index, link in enumerate(links):
        chunk_start = start
        progress.update(index * per_link)
        while chunk_start < end:
            chunk_end = min(chunk_start + chunk, end)
            works = [
                _Work(link, probe, bound=chunk_start, until=chunk_end) for probe in link.probes
            ]
            if works:
                samples_read += (await _rewrite(db, works)).samples_read
            chunk_start = chunk_end
            progress.update(index * per_link + math.ceil((chunk_start - start) / chunk))
    return samples_read


# How much of a history one pass of `derive_within` derives.
DERIVE_SLICE = timedelta(days=7)


async def derive_within(
    conn: psycopg.AsyncConnection[Any],
    links: Sequence[LinkSpec],
    earliest: Mapping[tuple[str, str], datetime],
    *,
    per_slice: Mapping[tuple[str, str], int] | None = None,
    slice_: timedelta = DERIVE_SLICE,
    budget: int = 50_000,
    progress: Progress | None = None,
) -> int:
    """Re-derive, in the caller's transaction on `conn`, each (link, probe) of `earliest`
    from the safe anchor before its time to the end of its samples; return the samples
    read. For samples the caller has just written in that transaction (an import), so
    that they and their states commit together or not at all. Pairs not among `links`
    are ignored.

    Goes a slice of time at a time, so memory stays bounded however long the history,
    and many links a pass, so many short histories cost few statements: links are taken
    together while their probes' expected samples a slice (`per_slice`, unknown: the
    whole budget) stay within `budget`, and a link expecting more than the budget alone
    goes in shorter slices. A link's probes go together, from the earliest
    of their times, so that each pass derives the link from probes derived alike.
    """
    specs = {(link.id, probe.id): (link, probe) for link in links for probe in link.probes}
    keys = [k for k in earliest if k in specs]
    # Every link's lock at once, in the one global order (a slice's own locking of a
    # link already held is then a no-op): taken one by one, while a live batch takes its
    # own set at once, two transactions could each hold what the other waits for.
    link_ids = sorted({link_id for link_id, _ in keys})
    await conn.execute(
        query("states_lock_links"), {"lock_class": _LOCK_CLASS, "link_ids": link_ids}
    )
    probes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in keys:
        probes[key[0]].append(key)
    weight = {
        link_id: sum((per_slice or {}).get(key, budget) for key in keys_)
        for link_id, keys_ in probes.items()
    }
    # A link denser than the budget goes in shorter slices, down to a minute.
    span = {
        link_id: max(slice_ * min(1.0, budget / weight[link_id]), timedelta(minutes=1))
        for link_id in probes
    }
    # (link, where its next slice begins), in link order.
    pending = deque((link_id, min(earliest[k] for k in probes[link_id])) for link_id in link_ids)
    read = 0
    while pending:
        group = [pending.popleft()]
        total = weight[group[0][0]]
        while pending and total + weight[pending[0][0]] <= budget:
            group.append(pending.popleft())
            total += weight[group[-1][0]]
        works = [
            _Work(*specs[key], bound=bound, until=bound + span[link_id], slice_only=True)
            for link_id, bound in group
            for key in probes[link_id]
        ]
        read += (await _rewrite_on(conn, works)).samples_read
        if progress is not None:
            progress.update(read)
        ends: dict[str, list[datetime | None]] = defaultdict(list)
        for work in works:
            ends[work.link.id].append(work.end)
        for link_id, _ in group:
            # The link goes on from the earliest place one of its probes stopped.
            stops = [end for end in ends[link_id] if end is not None]
            if stops:
                pending.append((link_id, min(stops)))
    return read


async def _rewrite(db: Database, works: list[_Work]) -> _Pass:
    """Re-derive `works` and their links in one transaction, under the links' locks."""
    async with db.connection() as conn, conn.transaction():
        return await _rewrite_on(conn, works)


async def _rewrite_on(conn: psycopg.AsyncConnection[Any], works: list[_Work]) -> _Pass:
    """`_rewrite` in the transaction that `conn` is in; its locks last until that ends."""
    done = _Pass()
    cur = conn.cursor(row_factory=tuple_row)
    link_ids = sorted({w.link.id for w in works})
    await cur.execute(query("states_lock_links"), {"lock_class": _LOCK_CLASS, "link_ids": link_ids})
    # Everything below is read after the locks are held (READ COMMITTED: each statement
    # sees all commits so far), so the previous rewrite of these links and every batch
    # committed before it are included.
    await _find_starts(cur, works)
    await _find_ends(cur, works)
    await _read_samples(cur, works)
    done.samples_read = sum(len(w.samples) for w in works)
    await _rewrite_probes(cur, works, done)
    await _rewrite_links(cur, works, done)
    # The outbox: the outages that begin or end at a link's live edge, in this transaction.
    done.events += await write_outage_events(cur, done.live_edges)
    await _record_progress(cur, works)
    return done


def _pairs(works: Sequence[_Work]) -> dict[str, list[str]]:
    return {"link_ids": [w.link.id for w in works], "probe_ids": [w.probe.id for w in works]}


def _sample(work: _Work, observed_at: datetime, outcome: str, error: str | None) -> _Observed:
    return _Observed(work.link.id, work.probe.id, observed_at, _OUTCOME_OF[outcome], error)


_OUTCOME_OF = {o.value: o for o in Outcome}


async def _samples_per_work(
    cur: psycopg.AsyncCursor[tuple[Any, ...]],
    name: str,
    works: Sequence[_Work],
    params: dict[str, Any],
) -> list[list[_Observed]]:
    await cur.execute(query(name), {**_pairs(works), **params})
    found: list[list[_Observed]] = [[] for _ in works]
    for ord_, observed_at, outcome, error in await cur.fetchall():
        found[ord_ - 1].append(_sample(works[ord_ - 1], observed_at, outcome, error))
    return found


async def _find_starts(cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work]) -> None:
    limits = [max(1, w.probe.confirm) for w in works]
    before = await _samples_per_work(
        cur, "states_samples_before", works, {"before": [w.bound for w in works], "limits": limits}
    )
    for work, found, limit in zip(works, before, limits, strict=True):
        anchor = anchor_before(
            found, confirm=work.probe.confirm, stale=work.stale, complete=len(found) < limit
        )
        if anchor is None:
            # Nothing earlier: the probe's timeline (re)starts at its first sample.
            work.start, work.continues_confirmed_run, work.grounded = work.bound, False, True
        else:
            work.start, work.continues_confirmed_run = anchor.at, anchor.continues_confirmed_run


async def _find_ends(cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work]) -> None:
    bounded = [w for w in works if w.until is not None]
    if not bounded:
        return
    limits = [max(1, w.probe.confirm) for w in bounded]
    until = [w.until for w in bounded]
    before = await _samples_per_work(
        cur, "states_samples_before", bounded, {"before": until, "limits": limits}
    )
    after = await _samples_per_work(
        cur, "states_samples_from", bounded, {"from": until, "limits": limits}
    )
    candidates: list[Observation | None] = [
        anchor_from(b, a, confirm=w.probe.confirm, stale=w.stale)
        for w, b, a in zip(bounded, before, after, strict=True)
    ]
    # Stopping at an anchor keeps the stored intervals after it, so that is only right
    # where stored intervals reach it; otherwise derive to the end of the samples.
    at = [
        c.observed_at if c is not None else w.until
        for w, c in zip(bounded, candidates, strict=True)
    ]
    await cur.execute(query("states_probe_touching"), {**_pairs(bounded), "from": at, "to": at})
    covered = set()
    for ord_, status, starts_at, ends_at, error in await cur.fetchall():
        if Interval(LinkStatus(status), starts_at, ends_at, error).contains(at[ord_ - 1]):
            covered.add(ord_ - 1)
    for index, (work, candidate) in enumerate(zip(bounded, candidates, strict=True)):
        if candidate is not None and (index in covered or work.slice_only):
            work.end, work.end_error = candidate.observed_at, candidate.error


async def _read_samples(cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work]) -> None:
    found = await _samples_per_work(
        cur,
        "states_samples_range",
        works,
        {"from": [w.start for w in works], "to": [w.end for w in works]},
    )
    for work, samples in zip(works, found, strict=True):
        work.samples = samples


async def _rewrite_probes(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work], done: _Pass
) -> None:
    live = [w for w in works if w.samples]  # no samples: nothing to derive, keep the rows
    if not live:
        return
    await cur.execute(
        query("states_probe_touching"),
        {**_pairs(live), "from": [w.start for w in live], "to": [w.end for w in live]},
    )
    old: list[list[Interval]] = [[] for _ in live]
    for ord_, status, starts_at, ends_at, error in await cur.fetchall():
        old[ord_ - 1].append(Interval(LinkStatus(status), starts_at, ends_at, error))
    deletes: list[tuple[str, str, datetime]] = []
    inserts: list[tuple[str, str, Interval]] = []
    for work, stored in zip(live, old, strict=True):
        assert work.start is not None
        derived = derive_probe_intervals(
            work.samples,
            interval=work.probe.interval,
            confirm=work.probe.confirm,
            stale_after=work.probe.stale_after,
            continues_confirmed_run=work.continues_confirmed_run,
        )
        new = clip_intervals(derived, work.start, work.end)
        result = splice_intervals(stored, new, work.start, work.end, end_error=work.end_error)
        gone, added = _diff(stored, result)
        deletes += [(work.link.id, work.probe.id, i.starts_at) for i in gone]
        inserts += [(work.link.id, work.probe.id, i) for i in added]
    if deletes:
        await cur.execute(
            query("states_probe_delete"),
            {
                "link_ids": [d[0] for d in deletes],
                "probe_ids": [d[1] for d in deletes],
                "starts_at": [d[2] for d in deletes],
            },
        )
    if inserts:
        await cur.execute(
            query("states_probe_insert"),
            {
                "link_ids": [i[0] for i in inserts],
                "probe_ids": [i[1] for i in inserts],
                "statuses": [i[2].status.value for i in inserts],
                "starts_at": [i[2].starts_at for i in inserts],
                "ends_at": [i[2].ends_at for i in inserts],
                "errors": [i[2].error for i in inserts],
            },
        )
    done.probe_rows_deleted += len(deletes)
    done.probe_rows_inserted += len(inserts)


async def _rewrite_links(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work], done: _Pass
) -> None:
    # Link status is a pointwise function of its availability probes' statuses, so the
    # range every rewritten availability probe spans is all that can have changed.
    ranges: dict[str, tuple[datetime, datetime | None]] = {}
    for work in works:
        if not work.samples or not work.probe.availability:
            continue
        assert work.start is not None
        if work.link.id in ranges:
            start, end = ranges[work.link.id]
            start = min(start, work.start)
            end = None if end is None or work.end is None else max(end, work.end)
        else:
            start, end = work.start, work.end
        ranges[work.link.id] = (start, end)
    if not ranges:
        return
    links = {w.link.id: w.link for w in works}
    order = sorted(ranges)
    probes = [
        (link_id, probe.id)
        for link_id in order
        for probe in links[link_id].probes
        if probe.availability
    ]
    await cur.execute(
        query("states_probe_overlapping"),
        {
            "link_ids": [p[0] for p in probes],
            "probe_ids": [p[1] for p in probes],
            "from": [ranges[p[0]][0] for p in probes],
            "to": [ranges[p[0]][1] for p in probes],
        },
    )
    timelines: dict[_Key, list[Interval]] = defaultdict(list)
    for ord_, status, starts_at, ends_at, error in await cur.fetchall():
        timelines[probes[ord_ - 1]].append(Interval(LinkStatus(status), starts_at, ends_at, error))
    await cur.execute(
        query("states_link_touching"),
        {
            "link_ids": order,
            "from": [ranges[i][0] for i in order],
            "to": [ranges[i][1] for i in order],
        },
    )
    old: dict[str, list[Interval]] = defaultdict(list)
    for ord_, status, starts_at, ends_at in await cur.fetchall():
        old[order[ord_ - 1]].append(Interval(LinkStatus(status), starts_at, ends_at))
    frontiers = await _frontiers(cur, [p for p in probes if ranges[p[0]][1] is None])
    deletes: list[tuple[str, datetime]] = []
    inserts: list[tuple[str, Interval]] = []
    for link_id in order:
        start, end = ranges[link_id]
        new = derive_link_intervals(
            (
                ProbeTimeline(p.id, clip_intervals(timelines[(link_id, p.id)], start, end))
                for p in links[link_id].probes
                if p.availability
            ),
            links[link_id].quorum,
        )
        stored = old[link_id]
        result = splice_intervals(stored, new, start, end)
        gone, added = _diff(stored, result)
        deletes += [(link_id, i.starts_at) for i in gone]
        inserts += [(link_id, i) for i in added]
        frontier = frontiers.get(link_id)
        latest_after = None if frontier is None else _interval_at(result, frontier)
        if frontier is not None and latest_after is not None:
            done.live_edges.append((links[link_id], latest_after))
            latest_before = _interval_at(stored, frontier)
            if latest_before is None or latest_before.status is not latest_after.status:
                done.transitions.append((link_id, latest_after))
    if deletes:
        await cur.execute(
            query("states_link_delete"),
            {"link_ids": [d[0] for d in deletes], "starts_at": [d[1] for d in deletes]},
        )
    if inserts:
        await cur.execute(
            query("states_link_insert"),
            {
                "link_ids": [i[0] for i in inserts],
                "statuses": [i[1].status.value for i in inserts],
                "starts_at": [i[1].starts_at for i in inserts],
                "ends_at": [i[1].ends_at for i in inserts],
            },
        )
    done.link_rows_deleted += len(deletes)
    done.link_rows_inserted += len(inserts)


async def _frontiers(
    cur: psycopg.AsyncCursor[tuple[Any, ...]], probes: Sequence[_Key]
) -> dict[str, datetime]:
    """Each link's frontier: the time of the newest sample of any of its availability
    probes, the latest moment its status is measured rather than projected.

    Beyond its newest sample a probe's stored status is a projection (its outcome held
    for stale_after, then UNKNOWN) that the next sample replaces. The link's latest
    interval, the end of that projection, is therefore not a status any sample has shown:
    a probe that answers later in each round would "recover" the link every round, at a
    time still to come. At the frontier, every probe's status is what its own newest
    sample says (or UNKNOWN where that is older than stale_after).
    """
    if not probes:
        return {}
    await cur.execute(
        query("states_newest_samples"),
        {"link_ids": [p[0] for p in probes], "probe_ids": [p[1] for p in probes]},
    )
    result: dict[str, datetime] = {}
    for ord_, newest in await cur.fetchall():
        link_id = probes[ord_ - 1][0]
        if newest is not None and (link_id not in result or newest > result[link_id]):
            result[link_id] = newest
    return result


def _interval_at(intervals: Sequence[Interval], moment: datetime) -> Interval | None:
    return next((i for i in intervals if i.contains(moment)), None)


def _diff(
    old: Sequence[Interval], new: Sequence[Interval]
) -> tuple[list[Interval], list[Interval]]:
    """Rows to delete and rows to insert to turn `old` into `new` (unchanged rows stay)."""
    kept = set(old) & set(new)
    return [i for i in old if i not in kept], [i for i in new if i not in kept]


async def _record_progress(cur: psycopg.AsyncCursor[tuple[Any, ...]], works: list[_Work]) -> None:
    rows: list[tuple[_Work, datetime]] = []
    for work in works:
        # Samples up to the last one before `end` are fully reflected: its interval ends
        # at `end` or earlier, and nothing after `end` changes what lies before it.
        included = [s for s in work.samples if work.end is None or s.observed_at < work.end]
        if included:
            rows.append((work, included[-1].observed_at))
    if rows:
        await cur.execute(
            query("states_progress_upsert"),
            {
                **_pairs([w for w, _ in rows]),
                "derived_through": [through for _, through in rows],
                "from": [w.start for w, _ in rows],
                "grounded": [w.grounded for w, _ in rows],
            },
        )
