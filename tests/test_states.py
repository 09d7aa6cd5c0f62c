"""Status intervals, by the SLA semantics of docs/design.md: pure derivation at every boundary, and
the stored intervals against the real database (incremental = full rebuild, rebuild over
a range, incidents, current status with exact starts)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import tuple_row

import collector.deriver
from collector import intervals, state_reads
from collector.database import Database
from collector.deriver import StateDeriver
from collector.intervals import (
    Interval,
    ProbeTimeline,
    derive_link_intervals,
    derive_probe_intervals,
    splice_intervals,
)
from collector.rebuild import rebuild_states
from collector.state_reads import incidents, link_intervals, probe_intervals
from collector.status import current_link_states
from collector.writer import write_samples
from kernel.domain import LinkStatus, Outcome, Sample
from kernel.errors import DatabaseError
from tests.builders import (
    DEGRADED,
    DOWN,
    INTERVAL,
    STALE,
    T0,
    UNKNOWN,
    UP,
    LinkSpec,
    Point,
    ProbeSpec,
    at,
    samples,
)

Span = tuple[LinkStatus, float, float | None] | tuple[LinkStatus, float, float | None, str]


def spans(*items: Span) -> list[Interval]:
    return [
        Interval(
            item[0],
            at(item[1]),
            None if item[2] is None else at(item[2]),
            item[3] if len(item) > 3 else None,
        )
        for item in items
    ]


@dataclass(frozen=True)
class ProbeCase:
    id: str
    points: tuple[Point, ...]
    expected: tuple[Span, ...]
    confirm: int = 2
    stale_after: timedelta | None = STALE
    continues_confirmed_run: bool = False


PROBE_CASES = [
    ProbeCase("no samples", (), ()),
    ProbeCase(
        "one up: held for stale_after, then open UNKNOWN",
        ((0, "up"),),
        ((UP, 0, 90), (UNKNOWN, 90, None)),
    ),
    ProbeCase(
        "single down sample: no outage",
        ((0, "up"), (30, "down", "timeout"), (60, "up")),
        ((UP, 0, 150), (UNKNOWN, 150, None)),
    ),
    ProbeCase(
        "single down at the end: not an outage yet",
        ((0, "up"), (30, "down")),
        ((UP, 0, 120), (UNKNOWN, 120, None)),
    ),
    ProbeCase(
        "two downs: outage from the first, with its error",
        ((0, "up"), (30, "down", "timeout"), (60, "down", "refused"), (90, "up")),
        ((UP, 0, 30), (DOWN, 30, 90, "timeout"), (UP, 90, 180), (UNKNOWN, 180, None)),
    ),
    ProbeCase(
        "a running outage holds until last + stale_after",
        ((0, "down", "timeout"), (30, "down")),
        ((DOWN, 0, 120, "timeout"), (UNKNOWN, 120, None)),
    ),
    ProbeCase(
        "gap longer than stale_after: UNKNOWN from last + stale_after",
        ((0, "up"), (120, "up")),
        ((UP, 0, 90), (UNKNOWN, 90, 120), (UP, 120, 210), (UNKNOWN, 210, None)),
    ),
    ProbeCase(
        "gap a microsecond over stale_after: a microsecond of UNKNOWN",
        ((0, "up"), (90.000001, "up")),
        (
            (UP, 0, 90),
            (UNKNOWN, 90, 90.000001),
            (UP, 90.000001, 180.000001),
            (UNKNOWN, 180.000001, None),
        ),
    ),
    ProbeCase(
        "gap just under stale_after: no UNKNOWN",
        ((0, "up"), (89.999999, "up")),
        ((UP, 0, 179.999999), (UNKNOWN, 179.999999, None)),
    ),
    ProbeCase(
        "gap exactly stale_after: no UNKNOWN",
        ((0, "up"), (90, "up")),
        ((UP, 0, 180), (UNKNOWN, 180, None)),
    ),
    ProbeCase(
        "downs exactly stale_after apart are consecutive",
        ((0, "down"), (90, "down")),
        ((DOWN, 0, 180), (UNKNOWN, 180, None)),
    ),
    ProbeCase(
        "downs more than stale_after apart are not consecutive",
        ((0, "down"), (91, "down")),
        ((UP, 0, 90), (UNKNOWN, 90, 91), (UP, 91, 181), (UNKNOWN, 181, None)),
    ),
    ProbeCase(
        "out-of-order arrival: derived in time order",
        ((60, "down"), (0, "up"), (90, "up"), (30, "down")),
        ((UP, 0, 30), (DOWN, 30, 90), (UP, 90, 180), (UNKNOWN, 180, None)),
    ),
    ProbeCase(
        "duplicate samples count once: no outage",
        ((0, "up"), (30, "down"), (30, "down"), (60, "up")),
        ((UP, 0, 150), (UNKNOWN, 150, None)),
    ),
    ProbeCase(
        "a degraded burst: DEGRADED, then UP again",
        ((0, "up"), (30, "degraded"), (60, "degraded"), (90, "up")),
        ((UP, 0, 30), (DEGRADED, 30, 90), (UP, 90, 180), (UNKNOWN, 180, None)),
    ),
    ProbeCase(
        "a degraded sample breaks a run of downs",
        ((0, "down"), (30, "degraded"), (60, "down")),
        ((UP, 0, 30), (DEGRADED, 30, 60), (UP, 60, 150), (UNKNOWN, 150, None)),
    ),
    ProbeCase(
        "an unknown sample: UNKNOWN until the next sample",
        ((0, "up"), (30, "unknown", "no privilege"), (60, "up")),
        ((UP, 0, 30), (UNKNOWN, 30, 60, "no privilege"), (UP, 60, 150), (UNKNOWN, 150, None)),
    ),
    ProbeCase(
        "an unknown sample then silence: one UNKNOWN",
        ((0, "up"), (30, "unknown")),
        ((UP, 0, 30), (UNKNOWN, 30, None)),
    ),
    ProbeCase(
        "an unknown sample breaks a run of downs",
        ((0, "down"), (30, "unknown"), (60, "down")),
        ((UP, 0, 30), (UNKNOWN, 30, 60), (UP, 60, 150), (UNKNOWN, 150, None)),
    ),
    ProbeCase(
        "one up ends an outage",
        ((0, "down"), (30, "down"), (60, "up"), (90, "down")),
        ((DOWN, 0, 60), (UP, 60, 180), (UNKNOWN, 180, None)),
    ),
    ProbeCase(
        "confirm 1: a single down is an outage",
        ((0, "up"), (30, "down"), (60, "up")),
        ((UP, 0, 30), (DOWN, 30, 60), (UP, 60, 150), (UNKNOWN, 150, None)),
        confirm=1,
    ),
    ProbeCase(
        "confirm 3: two downs are not",
        ((0, "down"), (30, "down"), (60, "up")),
        ((UP, 0, 150), (UNKNOWN, 150, None)),
        confirm=3,
    ),
    ProbeCase(
        "stale_after None is 3 x interval",
        ((0, "up"), (91, "up")),
        ((UP, 0, 90), (UNKNOWN, 90, 91), (UP, 91, 181), (UNKNOWN, 181, None)),
        stale_after=None,
    ),
    ProbeCase(
        "continuing a confirmed run: one down is DOWN",
        ((0, "down"), (30, "up")),
        ((DOWN, 0, 30), (UP, 30, 120), (UNKNOWN, 120, None)),
        continues_confirmed_run=True,
    ),
]


@pytest.mark.parametrize("case", PROBE_CASES, ids=[c.id for c in PROBE_CASES])
def test_derive_probe_intervals(case: ProbeCase) -> None:
    derived = derive_probe_intervals(
        samples(*case.points),
        interval=INTERVAL,
        confirm=case.confirm,
        stale_after=case.stale_after,
        continues_confirmed_run=case.continues_confirmed_run,
    )
    assert derived == spans(*case.expected)


def test_derive_probe_intervals_rejects_confirm_zero() -> None:
    with pytest.raises(ValueError, match="confirm"):
        derive_probe_intervals([], interval=INTERVAL, confirm=0, stale_after=None)


LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_a_sample_near_the_end_of_time_holds_its_outcome_up_to_it() -> None:
    """An import once took 9999-12-31T23:59:59 at its word: its outcome cannot hold for
    stale_after, so it holds to the last moment a time can hold, then UNKNOWN."""
    far = [*samples((0, "up")), Sample("l1", "icmp", LAST_SECOND, Outcome.DOWN)]
    derived = derive_probe_intervals(far, interval=INTERVAL, confirm=1, stale_after=STALE)
    assert derived == [
        Interval(UP, T0, at(90)),
        Interval(UNKNOWN, at(90), LAST_SECOND),
        Interval(DOWN, LAST_SECOND, intervals.END_OF_TIME),
        Interval(UNKNOWN, intervals.END_OF_TIME, None),
    ]


def test_a_sample_at_the_end_of_time_is_refused_with_its_probe_and_time() -> None:
    last = Sample("l1", "icmp", intervals.END_OF_TIME, Outcome.UP)
    with pytest.raises(ValueError, match=r"probe icmp at 9999-12-31T23:59:59\.999999\+00:00"):
        derive_probe_intervals([last], interval=INTERVAL, confirm=1, stale_after=None)


def timeline(probe: str, *items: Span, availability: bool = True) -> ProbeTimeline:
    return ProbeTimeline(probe, spans(*items), availability)


LINK_CASES: list[tuple[str, list[ProbeTimeline], list[Span]]] = [
    ("no probes: no intervals", [], []),
    (
        "one probe: its intervals",
        [timeline("a", (UP, 0, 90), (UNKNOWN, 90, None))],
        [(UP, 0, 90), (UNKNOWN, 90, None)],
    ),
    (
        "two probes disagreeing: DOWN wins",
        [
            timeline("a", (UP, 0, 200), (UNKNOWN, 200, None)),
            timeline("b", (UP, 0, 60), (DOWN, 60, 120), (UP, 120, 200), (UNKNOWN, 200, None)),
        ],
        [(UP, 0, 60), (DOWN, 60, 120), (UP, 120, 200), (UNKNOWN, 200, None)],
    ),
    (
        "up and degraded: DEGRADED",
        [
            timeline("a", (UP, 0, 100), (UNKNOWN, 100, None)),
            timeline("b", (DEGRADED, 0, 50), (UP, 50, 100), (UNKNOWN, 100, None)),
        ],
        [(DEGRADED, 0, 50), (UP, 50, 100), (UNKNOWN, 100, None)],
    ),
    (
        "one probe unknown, one up: UP",
        [
            timeline("a", (UNKNOWN, 0, 100), (UNKNOWN, 100, None)),
            timeline("b", (UP, 0, 100), (UNKNOWN, 100, None)),
        ],
        [(UP, 0, 100), (UNKNOWN, 100, None)],
    ),
    (
        "adjacent equal statuses are merged",
        [
            timeline("a", (UP, 0, 50), (DOWN, 50, 100), (UNKNOWN, 100, None)),
            timeline("b", (DOWN, 0, 50), (UP, 50, 100), (UNKNOWN, 100, None)),
        ],
        [(DOWN, 0, 100), (UNKNOWN, 100, None)],
    ),
    (
        "a non-availability probe is ignored",
        [
            timeline("a", (UP, 0, 100), (UNKNOWN, 100, None)),
            timeline("http", (DOWN, 0, 100), (UNKNOWN, 100, None), availability=False),
        ],
        [(UP, 0, 100), (UNKNOWN, 100, None)],
    ),
    (
        "coverage starts at the first probe's first sample",
        [
            timeline("a", (UP, 30, 100), (UNKNOWN, 100, None)),
            timeline("b", (DOWN, 60, 100), (UNKNOWN, 100, None)),
        ],
        [(UP, 30, 60), (DOWN, 60, 100), (UNKNOWN, 100, None)],
    ),
]


@pytest.mark.parametrize(
    ("timelines", "expected"),
    [case[1:] for case in LINK_CASES],
    ids=[case[0] for case in LINK_CASES],
)
def test_derive_link_intervals(timelines: list[ProbeTimeline], expected: list[Span]) -> None:
    assert derive_link_intervals(timelines) == spans(*expected)


def test_splice_replaces_a_range_and_merges_the_seams() -> None:
    old = spans((UP, 0, 100, "a"), (DOWN, 100, 200, "b"), (UP, 200, 300), (UNKNOWN, 300, None))
    new = spans((UP, 50, 150))
    assert splice_intervals(old, new, at(50), at(150), end_error="c") == spans(
        (UP, 0, 150, "a"), (DOWN, 150, 200, "c"), (UP, 200, 300), (UNKNOWN, 300, None)
    )
    assert splice_intervals(old, spans((UP, 150, 250)), at(150)) == spans(
        (UP, 0, 100, "a"), (DOWN, 100, 150, "b"), (UP, 150, 250)
    )


# --- the anchor rule, without a database: many examples are cheap ----------------------

OUTCOMES = st.sampled_from(["up", "down", "down", "down", "degraded", "unknown"])


@st.composite
def sample_sets(
    draw: st.DrawFn, probe: str = "icmp", max_size: int = 14, link: str = "link"
) -> list[Sample]:
    """Samples on a 15 s grid (stale_after 45 s here, so gaps land on, under and over
    it), some a microsecond off, unique in time."""
    # Dense enough for runs of downs that cross the boundaries tested.
    slots = draw(st.lists(st.integers(0, 24), max_size=max_size, unique=True))
    return [
        Sample(
            link,
            probe,
            at(slot * 15) + timedelta(microseconds=draw(st.sampled_from([0, 0, 1]))),
            Outcome(draw(OUTCOMES)),
            error=f"e{slot}",
        )
        for slot in sorted(slots)
    ]


@settings(max_examples=1000, deadline=None)
@given(all_samples=sample_sets(), data=st.data(), confirm=st.integers(1, 3))
def test_rederiving_from_the_anchor_equals_a_full_derivation(
    all_samples: list[Sample], data: st.DataObject, confirm: int
) -> None:
    """Intervals derived without some samples, then re-derived from the anchor before the
    earliest of them and spliced in, equal the derivation of all samples."""
    if not all_samples:
        return
    _anchor_before, clip_intervals = intervals.anchor_before, intervals.clip_intervals
    new = data.draw(st.lists(st.sampled_from(all_samples), min_size=1, unique=True))
    old_samples = [s for s in all_samples if s not in new]
    stale = timedelta(seconds=45)

    def derive(given: list[Sample], continues: bool = False) -> list[Interval]:
        return derive_probe_intervals(
            given,
            interval=timedelta(seconds=15),
            confirm=confirm,
            stale_after=None,
            continues_confirmed_run=continues,
        )

    old = derive(old_samples)

    bound = min(s.observed_at for s in new)
    before = [s for s in reversed(all_samples) if s.observed_at < bound][:confirm]
    anchor = _anchor_before(before, confirm=confirm, stale=stale, complete=len(before) < confirm)
    start = bound if anchor is None else anchor.at
    rederived = derive(
        [s for s in all_samples if s.observed_at >= start],
        continues=anchor is not None and anchor.continues_confirmed_run,
    )
    spliced = splice_intervals(old, clip_intervals(rederived, start, None), start)
    assert spliced == derive(all_samples)


@settings(max_examples=1000, deadline=None)
@given(all_samples=sample_sets(), first=st.integers(0, 24), slots=st.integers(1, 12))
@pytest.mark.parametrize("confirm", [1, 2, 3])
def test_rederiving_between_two_anchors_changes_nothing(
    all_samples: list[Sample], first: int, slots: int, confirm: int
) -> None:
    """A rebuild's splice: from the anchor before `start` to the one at or after `end`,
    over intervals that are already right, gives them back unchanged."""
    start, end = at(first * 15), at((first + slots) * 15)
    stale = timedelta(seconds=45)

    def derive(given: list[Sample], continues: bool = False) -> list[Interval]:
        return derive_probe_intervals(
            given,
            interval=timedelta(seconds=15),
            confirm=confirm,
            stale_after=None,
            continues_confirmed_run=continues,
        )

    full = derive(all_samples)
    before_start = [s for s in reversed(all_samples) if s.observed_at < start][:confirm]
    anchor = intervals.anchor_before(
        before_start, confirm=confirm, stale=stale, complete=len(before_start) < confirm
    )
    left = start if anchor is None else anchor.at
    before_end = [s for s in reversed(all_samples) if s.observed_at < end][:confirm]
    from_end = [s for s in all_samples if s.observed_at >= end][:confirm]
    right = intervals.anchor_from(before_end, from_end, confirm=confirm, stale=stale)
    read = [
        s
        for s in all_samples
        if s.observed_at >= left and (right is None or s.observed_at <= right.observed_at)
    ]
    rederived = derive(read, continues=anchor is not None and anchor.continues_confirmed_run)
    right_at = None if right is None else right.observed_at
    new = intervals.clip_intervals(rederived, left, right_at)
    spliced = splice_intervals(
        full, new, left, right_at, end_error=None if right is None else right.error
    )
    assert spliced == full


# --- against the database --------------------------------------------------------------


async def stored(db: Database, link: LinkSpec) -> tuple[dict[str, list[Interval]], list[Interval]]:
    """Every stored interval of `link`, per probe and for the link, unclipped."""
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            "SELECT probe_id, status, starts_at, ends_at, error FROM probe_states"
            " WHERE link_id = %s ORDER BY probe_id, starts_at",
            (link.id,),
        )
        per_probe: dict[str, list[Interval]] = {p.id: [] for p in link.probes}
        for probe_id, status, starts_at, ends_at, error in await cur.fetchall():
            per_probe[probe_id].append(Interval(LinkStatus(status), starts_at, ends_at, error))
        await cur.execute(
            "SELECT status, starts_at, ends_at FROM link_states"
            " WHERE link_id = %s ORDER BY starts_at",
            (link.id,),
        )
        link_rows = [Interval(LinkStatus(s), a, b) for s, a, b in await cur.fetchall()]
    return per_probe, link_rows


def full_derivation(
    link: LinkSpec, all_samples: Sequence[Sample]
) -> tuple[dict[str, list[Interval]], list[Interval]]:
    per_probe = {
        p.id: derive_probe_intervals(
            [s for s in all_samples if s.probe_id == p.id],
            interval=p.interval,
            confirm=p.confirm,
            stale_after=p.stale_after,
        )
        for p in link.probes
    }
    link_rows = derive_link_intervals(
        ProbeTimeline(p.id, per_probe[p.id], p.availability) for p in link.probes
    )
    return per_probe, link_rows


async def empty_tables(db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute("TRUNCATE samples, probe_states, link_states, state_progress")


GRID = timedelta(seconds=15)
PROPERTY_LINK = LinkSpec(
    "l1",
    (
        ProbeSpec("a", interval=GRID, confirm=2, stale_after=None),
        ProbeSpec("b", interval=GRID, confirm=3, stale_after=None),
        ProbeSpec(
            "http", kind="http", interval=GRID, confirm=1, stale_after=None, availability=False
        ),
    ),
)


Delivery = tuple[list[Sample], list[list[Sample]], list[int], tuple[datetime, datetime]]


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    """All samples, the batches they are written in (any order, some twice), the order
    of the `samples_stored` calls (each after its batch's write), and a range to rebuild."""
    all_samples = [
        s
        for probe in PROPERTY_LINK.probes
        for s in draw(sample_sets(probe.id, max_size=10, link=PROPERTY_LINK.id))
    ]
    first = draw(st.integers(0, 24))
    rebuild = (at(first * 15), at((first + draw(st.integers(1, 12))) * 15))
    if not all_samples:
        return [], [], [], rebuild
    extra = draw(st.lists(st.sampled_from(all_samples), max_size=4))
    sent = draw(st.permutations(all_samples + extra))
    batches: list[list[Sample]] = []
    while sent:
        size = draw(st.integers(1, max(1, len(sent))))
        batches.append(sent[:size])
        sent = sent[size:]
    calls = draw(st.permutations(range(len(batches))))
    return all_samples, batches, list(calls), rebuild


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(delivery=deliveries())
async def test_incremental_maintenance_equals_a_full_rebuild(
    database: Database, delivery: Delivery
) -> None:
    all_samples, batches, calls, (start, end) = delivery
    await empty_tables(database)
    deriver = StateDeriver(database, [PROPERTY_LINK])
    pending = list(calls)
    for written, batch in enumerate(batches):
        await write_samples(database, batch)
        # Calls whose batches are committed run, in their own (shuffled) order: a call
        # can come long after later batches were written.
        while pending and pending[0] <= written:
            await deriver.samples_stored(batches[pending.pop(0)])
    for index in pending:
        await deriver.samples_stored(batches[index])
    expected = full_derivation(PROPERTY_LINK, all_samples)
    assert await stored(database, PROPERTY_LINK) == expected
    # The progress marks never claim more than was derived: catching up changes nothing.
    await deriver.catch_up()
    assert await stored(database, PROPERTY_LINK) == expected
    # Rebuilding any range of a right state finds nothing to change.
    report = await rebuild_states(
        database, [PROPERTY_LINK], start, end, chunk=timedelta(seconds=60)
    )
    assert report.changed == ()
    assert await stored(database, PROPERTY_LINK) == expected


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    delivery=deliveries(),
    slice_s=st.integers(15, 120),
    budget=st.integers(1, 8),
    derived_first=st.integers(0, 3),
)
async def test_deriving_in_the_callers_transaction_in_slices_equals_a_full_derivation(
    database: Database, delivery: Delivery, slice_s: int, budget: int, derived_first: int
) -> None:
    # As an import does: some samples derived already as they came, the rest written and
    # derived in the writer's transaction, a few links a pass, a short slice at a time.
    all_samples, batches, _, _ = delivery
    await empty_tables(database)
    other = LinkSpec("l2", PROPERTY_LINK.probes)
    both = [*all_samples, *(dataclasses.replace(s, link_id="l2") for s in all_samples)]
    live = [s for batch in batches[:derived_first] for s in batch]
    live += [dataclasses.replace(s, link_id="l2") for s in live]
    imported = [s for s in both if s not in live]
    await write_samples(database, live)
    await StateDeriver(database, [PROPERTY_LINK, other]).samples_stored(live)
    await write_samples(database, imported)
    earliest: dict[tuple[str, str], datetime] = {}
    for sample in imported:
        key = (sample.link_id, sample.probe_id)
        earliest[key] = min(earliest.get(key, sample.observed_at), sample.observed_at)
    async with database.connection() as conn, conn.transaction():
        await collector.deriver.derive_within(
            conn,
            [PROPERTY_LINK, other],
            earliest,
            per_slice=dict.fromkeys(earliest, 1),
            slice_=timedelta(seconds=slice_s),
            budget=budget,
        )
    assert await stored(database, PROPERTY_LINK) == full_derivation(PROPERTY_LINK, all_samples)
    assert await stored(database, other) == full_derivation(
        other, [s for s in both if s.link_id == "l2"]
    )


async def test_concurrent_batches_for_one_link_do_not_interleave(database: Database) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"), ProbeSpec("b")))
    first = [
        *samples((0, "up"), (30, "down"), (60, "down"), probe="a"),
        *samples((0, "up"), probe="b"),
    ]
    second = [
        *samples((90, "up"), (120, "down"), probe="a"),
        *samples((30, "down"), (60, "down"), probe="b"),
    ]
    await write_samples(database, first + second)
    await asyncio.gather(
        StateDeriver(database, [link]).samples_stored(second),
        StateDeriver(database, [link]).samples_stored(first),
    )
    assert await stored(database, link) == full_derivation(link, first + second)


async def test_live_appends_rewrite_only_the_tail(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outage lasting many samples: each new batch reads a few samples, not the run."""
    link = LinkSpec("l1", (ProbeSpec("a"),))
    deriver = StateDeriver(database, [link])
    history = samples(*[(s, "down", "timeout") for s in range(0, 3000, 30)], probe="a")
    await write_samples(database, history)
    await deriver.samples_stored(history)
    later = samples((3000, "down"), probe="a")
    await write_samples(database, later)
    reads: list[int] = []
    original = collector.deriver._read_samples

    async def counting(cur: Any, works: list[collector.deriver._Work]) -> None:
        await original(cur, works)
        reads.append(sum(len(w.samples) for w in works))

    monkeypatch.setattr(collector.deriver, "_read_samples", counting)
    await deriver.samples_stored(later)
    assert reads == [2]  # the anchor (inside the confirmed run) and the new sample
    assert (await stored(database, link))[1] == spans((DOWN, 0, 3090), (UNKNOWN, 3090, None))


async def test_catch_up_derives_what_no_deriver_saw(database: Database) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"), ProbeSpec("b", availability=False)))
    first = samples((0, "up"), (30, "down"), (60, "down"), probe="a")
    await write_samples(database, first)
    deriver = StateDeriver(database, [link])
    assert await deriver.catch_up() == 1
    more = [*samples((90, "up"), probe="a"), *samples((0, "down"), probe="b")]
    await write_samples(database, more)  # committed, but samples_stored never called
    assert await deriver.catch_up() == 2
    assert await deriver.catch_up() == 0
    assert await stored(database, link) == full_derivation(link, first + more)


async def test_catch_up_derives_a_long_history_in_slices(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"),))
    points: list[Point] = [(s, "down" if 3000 <= s < 4000 else "up") for s in range(0, 10800, 30)]
    history = samples(*points, probe="a")
    await write_samples(database, history)
    reads: list[int] = []
    original = collector.deriver._read_samples

    async def counting(cur: Any, works: list[collector.deriver._Work]) -> None:
        await original(cur, works)
        reads.append(sum(len(w.samples) for w in works))

    monkeypatch.setattr(collector.deriver, "_read_samples", counting)
    deriver = StateDeriver(database, [link], catch_up_slice=timedelta(minutes=30))
    assert await deriver.catch_up() == 1
    assert len(reads) == 6  # one transaction per 30 minutes of history
    assert max(reads) <= 62  # 30 minutes of samples, and the anchors at either end
    assert await stored(database, link) == full_derivation(link, history)
    assert await deriver.catch_up() == 0


async def test_a_sample_near_the_end_of_time_is_derived_live_and_in_the_catch_up(
    database: Database,
) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"),))
    history = [*samples((0, "up"), probe="a"), Sample("l1", "a", LAST_SECOND, Outcome.UP)]
    await write_samples(database, history)
    deriver = StateDeriver(database, [link], catch_up_slice=timedelta(days=7))
    assert await deriver.catch_up() == 1  # its last slice would reach past the year 9999
    assert await stored(database, link) == full_derivation(link, history)
    live = samples((30, "down"), probe="a")
    await write_samples(database, live)
    await deriver.samples_stored(live)
    assert await stored(database, link) == full_derivation(link, history + live)


async def test_a_live_batch_after_underived_history_leaves_it_to_the_catch_up(
    database: Database,
) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"),))
    history = samples(*[(s, "up") for s in range(0, 3000, 30)], probe="a")
    live = samples((3000, "down"), probe="a")
    await write_samples(database, history + live)
    deriver = StateDeriver(database, [link])
    await deriver.samples_stored(live)  # derives from its anchor only
    assert await deriver.catch_up() == 1  # the history before it was never derived
    assert await stored(database, link) == full_derivation(link, history + live)


async def delete_sample(db: Database, link_id: str, probe_id: str, observed_at: datetime) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "DELETE FROM samples WHERE link_id = %s AND probe_id = %s AND observed_at = %s",
            (link_id, probe_id, observed_at),
        )


async def test_a_probe_that_cannot_be_derived_leaves_every_other_probe_and_link_derived(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    good_a, good_b = (
        LinkSpec("good-a", (ProbeSpec("a"),)),
        LinkSpec("good-b", (ProbeSpec("a"), ProbeSpec("b"))),
    )
    bad = LinkSpec("bad", (ProbeSpec("a"), ProbeSpec("b")))
    links = [good_a, bad, good_b]
    deriver = StateDeriver(database, links)
    first = [
        s
        for link in links
        for probe in link.probes
        for s in samples((0, "up"), (30, "down"), (60, "down"), link=link.id, probe=probe.id)
    ]
    # What an old import stored: no status can be held after it.
    poison = Sample("bad", "b", intervals.END_OF_TIME, Outcome.UP)
    await write_samples(database, [*first, poison])
    caplog.set_level(logging.DEBUG, logger="collector.deriver")
    await deriver.samples_stored(first)  # one batch for all three links: it does not raise

    for link in (good_a, good_b):
        assert await stored(database, link) == full_derivation(link, first)
    expected = full_derivation(bad, [s for s in first if s.link_id == "bad" and s.probe_id == "a"])
    assert await stored(database, bad) == ({"a": expected[0]["a"], "b": []}, expected[1])
    assert deriver.failing == {("bad", "b")}
    [failure] = await state_reads.state_failures(database)
    assert (failure.link_id, failure.probe_id) == ("bad", "b")
    assert failure.error.startswith("ValueError: the sample of probe b at 9999-12-31T23:59:59.9")
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    assert "link=bad probe=b " in errors[0].getMessage()
    assert errors[0].exc_info is None  # one line, not a traceback

    # Each batch with samples of it tries it again, alone: no new error line.
    second = [
        *samples((90, "up"), link="bad", probe="b"),
        *samples((90, "up"), link="good-a", probe="a"),
    ]
    await write_samples(database, second)
    await deriver.samples_stored(second)
    assert await stored(database, good_a) == full_derivation(good_a, first + second)
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    [again] = await state_reads.state_failures(database)
    assert again.since == failure.since
    assert again.last_failed_at > failure.last_failed_at

    # The row removed, the next batch derives it from where it first failed.
    await delete_sample(database, "bad", "b", intervals.END_OF_TIME)
    third = samples((120, "up"), link="bad", probe="b")
    await write_samples(database, third)
    await deriver.samples_stored(third)
    all_bad = [s for s in first + second + third if s.link_id == "bad"]
    assert await stored(database, bad) == full_derivation(bad, all_bad)
    assert await state_reads.state_failures(database) == []
    assert deriver.failing == frozenset()
    assert "link states derived again link=bad probe=b" in caplog.text


async def test_the_catch_up_derives_every_probe_but_one_that_fails_of_any_exception(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = [
        LinkSpec("l1", (ProbeSpec("a"),)),
        LinkSpec("l2", (ProbeSpec("a"),)),
        LinkSpec("l3", (ProbeSpec("a"),)),
    ]
    history = [s for link in links for s in samples((0, "up"), (30, "up"), link=link.id, probe="a")]
    await write_samples(database, history)
    original = collector.deriver.derive_probe_intervals

    def failing_for_l2(probe_samples: Sequence[Sample], **kwargs: Any) -> list[Interval]:
        probe_samples = list(probe_samples)
        if any(s.link_id == "l2" for s in probe_samples):
            raise RuntimeError("a bug that only this link's samples reach")
        return original(probe_samples, **kwargs)

    monkeypatch.setattr(collector.deriver, "derive_probe_intervals", failing_for_l2)
    assert await StateDeriver(database, links).catch_up() == 3
    for link in (links[0], links[2]):
        of_link = [s for s in history if s.link_id == link.id]
        assert await stored(database, link) == full_derivation(link, of_link)
    assert await stored(database, links[1]) == ({"a": []}, [])
    [failure] = await state_reads.state_failures(database)
    assert (failure.link_id, failure.error) == (
        "l2",
        "RuntimeError: a bug that only this link's samples reach",
    )

    # Fixed (a new version, say): the next start's catch-up derives it and clears it.
    monkeypatch.setattr(collector.deriver, "derive_probe_intervals", original)
    assert await StateDeriver(database, links).catch_up() == 1
    assert await stored(database, links[1]) == full_derivation(
        links[1], [s for s in history if s.link_id == "l2"]
    )
    assert await state_reads.state_failures(database) == []


async def test_a_database_outage_keeps_the_batch_for_the_next_call_and_records_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"),))
    batch = samples((0, "up"), (30, "up"), probe="a")
    await write_samples(database, batch)
    deriver = StateDeriver(database, [link])
    original = collector.deriver._rewrite

    async def unreachable(
        db: Database, works: list[collector.deriver._Work]
    ) -> collector.deriver._Pass:
        raise DatabaseError("database linkwatch: connection refused")

    monkeypatch.setattr(collector.deriver, "_rewrite", unreachable)
    with pytest.raises(DatabaseError):
        await deriver.samples_stored(batch)
    assert deriver.failing == frozenset()
    assert await state_reads.state_failures(database) == []
    monkeypatch.setattr(collector.deriver, "_rewrite", original)
    await deriver.samples_stored([])  # the kept batch is derived with the next call
    assert await stored(database, link) == full_derivation(link, batch)


async def test_samples_of_unconfigured_probes_are_ignored(database: Database) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"),))
    stray = samples((0, "down"), (30, "down"), link="other", probe="a")
    await write_samples(database, stray)
    deriver = StateDeriver(database, [link])
    await deriver.samples_stored(stray)
    assert deriver.ignored == 2
    assert await stored(database, link) == ({"a": []}, [])


async def corrupt(db: Database, link_id: str, start: datetime, end: datetime) -> None:
    """Turn every stored interval of the link that starts in [start, end) into UP."""
    async with db.connection() as conn:
        for table in ("probe_states", "link_states"):
            await conn.execute(
                f"UPDATE {table} SET status = 'up'"
                " WHERE link_id = %s AND starts_at >= %s AND starts_at < %s",
                (link_id, start, end),
            )


async def test_rebuild_states_recomputes_a_range(database: Database) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"), ProbeSpec("b")))
    quiet = LinkSpec("l2", (ProbeSpec("a"),))
    points_a = [(s, "up") for s in range(0, 6000, 30)]
    points_a[40:45] = [(s, "down", "timeout") for s, _ in points_a[40:45]]  # 1200..1320
    points_a[150:160] = [(s, "down") for s, _ in points_a[150:160]]  # 4500..4770
    all_samples = [
        *samples(*points_a, link="l1", probe="a"),
        *samples(*[(s, "up") for s in range(0, 6000, 30)], link="l1", probe="b"),
        *samples(*[(s, "up") for s in range(0, 6000, 30)], link="l2", probe="a"),
    ]
    await write_samples(database, all_samples)
    await StateDeriver(database, [link, quiet]).samples_stored(all_samples)
    expected = full_derivation(link, [s for s in all_samples if s.link_id == "l1"])
    assert await stored(database, link) == expected

    await corrupt(database, "l1", at(0), at(6000))  # both outages vanish
    report = await rebuild_states(
        database, [link, quiet], at(1000), at(2000), chunk=timedelta(seconds=600)
    )
    _, link_rows = await stored(database, link)
    # The range is right again; the outage after it is left as it was.
    assert (
        link_rows[:3]
        == expected[1][:3]
        == spans((UP, 0, 1200), (DOWN, 1200, 1350), (UP, 1350, 4500))
    )
    assert all(i.status is not DOWN for i in link_rows if i.starts_at >= at(2000))

    assert [r.link_id for r in report.changed] == ["l1"]
    (change,) = report.changed
    # Stored rows are shown as they were: the corruption left them unmerged.
    assert change.before == tuple(spans((UP, 1000, 1200), (UP, 1200, 1350), (UP, 1350, 2000)))
    assert change.after == tuple(spans((UP, 1000, 1200), (DOWN, 1200, 1350), (UP, 1350, 2000)))
    assert change.time_in(DOWN) == timedelta(seconds=150)
    assert change.time_in(DOWN, after=False) == timedelta(0)
    assert (change.probe_intervals_removed, change.probe_intervals_added) == (1, 1)
    assert report.samples_read > 0
    assert "l1: link intervals 3 -> 3, down 0:00:00 -> 0:02:30; probe intervals -1 +1" in "\n".join(
        report.lines()
    )

    again = await rebuild_states(database, [link, quiet], at(0), at(6000))
    assert await stored(database, link) == expected
    assert [r.link_id for r in again.changed] == ["l1"]
    assert (await rebuild_states(database, [link, quiet], at(0), at(6000))).changed == ()


async def test_rebuild_states_on_an_empty_table_derives_to_the_end(database: Database) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"),))
    all_samples = samples(*[(s, "up") for s in range(0, 3000, 30)], probe="a")
    await write_samples(database, all_samples)
    report = await rebuild_states(database, [link], at(600), at(900))
    _, link_rows = await stored(database, link)
    assert link_rows == spans((UP, 570, 3060), (UNKNOWN, 3060, None))
    assert report.links[0].after == tuple(spans((UP, 600, 900)))


async def test_incidents_with_the_probes_and_errors_that_saw_them(database: Database) -> None:
    link = LinkSpec(
        "l1", (ProbeSpec("icmp"), ProbeSpec("tcp"), ProbeSpec("http", availability=False))
    )
    all_samples = [
        *samples(
            (0, "up"),
            (30, "down", "timeout"),
            (60, "down"),
            (90, "up"),
            (120, "down", "unreachable"),
            (150, "down"),
            probe="icmp",
        ),
        *samples(
            (5, "up"),
            (35, "up"),
            (65, "down", "refused"),
            (95, "down", "refused"),
            (125, "down"),
            (155, "down"),
            probe="tcp",
        ),
        *samples((10, "down", "503"), (40, "down"), (70, "up"), (100, "up"), probe="http"),
    ]
    await write_samples(database, all_samples)
    await StateDeriver(database, [link]).samples_stored(all_samples)

    found = await incidents(database, ["l1", "nothing"], at(0), at(1000))
    assert [(i.starts_at, i.ends_at, i.seen_until, i.running) for i in found] == [
        (at(30), None, at(245), True),
    ]
    # One outage: icmp down from 30, tcp from 65 keeps it down past icmp's recovery at 90.
    (outage,) = found
    assert [(p.probe_id, p.starts_at, p.error) for p in outage.probes] == [
        ("http", at(10), "503"),
        ("icmp", at(30), "timeout"),
        ("tcp", at(65), "refused"),
    ]
    assert outage.duration is None

    ended = samples((185, "up"), probe="icmp") + samples((185, "up"), probe="tcp")
    await write_samples(database, ended)
    await StateDeriver(database, [link]).samples_stored(ended)
    (outage,) = await incidents(database, ["l1"], at(0), at(1000))
    assert (outage.ends_at, outage.duration, outage.running) == (
        at(185),
        timedelta(seconds=155),
        False,
    )
    assert await incidents(database, ["l1"], at(185), at(1000)) == []


async def test_link_intervals_are_clipped_to_the_range(database: Database) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"),))
    all_samples = samples((0, "up"), (30, "down"), (60, "down"), (90, "up"), probe="a")
    await write_samples(database, all_samples)
    await StateDeriver(database, [link]).samples_stored(all_samples)
    found = await link_intervals(database, ["l1", "none"], at(45), at(500))
    assert found == {
        "l1": spans((DOWN, 45, 90), (UP, 90, 180), (UNKNOWN, 180, 500)),
        "none": [],
    }
    per_probe = await probe_intervals(database, link, at(0), at(60))
    assert per_probe == {"a": spans((UP, 0, 30), (DOWN, 30, 60))}


async def test_current_status_uses_stored_intervals_for_an_exact_start(database: Database) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"), ProbeSpec("b")), description="HQ")
    long_outage = [
        *samples(*[(s, "down", "timeout") for s in range(0, 7200, 30)], probe="a"),
        *samples(*[(s, "up") for s in range(0, 7200, 30)], probe="b"),
    ]
    await write_samples(database, long_outage)
    (without,) = await current_link_states(
        database, [link], at(7200), history=timedelta(minutes=10)
    )
    assert (without.status, without.since_exact) == (DOWN, False)

    deriver = StateDeriver(database, [link])
    await deriver.samples_stored(long_outage)
    (state,) = await current_link_states(database, [link], at(7200), history=timedelta(minutes=10))
    assert (state.status, state.since, state.since_exact) == (DOWN, at(0), True)
    assert [(p.status, p.since, p.since_exact) for p in state.probes] == [
        (DOWN, at(0), True),
        (UP, at(0), True),
    ]

    # Samples the stored intervals do not include yet: they are not trusted.
    newer = samples((7200, "up"), (7230, "up"), probe="a")
    await write_samples(database, newer)
    (state,) = await current_link_states(database, [link], at(7240), history=timedelta(minutes=10))
    assert (state.status, state.since, state.since_exact) == (UP, at(7200), True)
    await deriver.samples_stored(newer)
    (state,) = await current_link_states(database, [link], at(7240), history=timedelta(minutes=10))
    assert (state.status, state.since, state.since_exact) == (UP, at(7200), True)


async def test_current_status_counts_availability_probes_only(database: Database) -> None:
    link = LinkSpec("l1", (ProbeSpec("a"), ProbeSpec("http", kind="http", availability=False)))
    await write_samples(
        database,
        [
            *samples((0, "up"), (30, "up"), probe="a"),
            *samples((0, "down"), (30, "down"), probe="http"),
        ],
    )
    (state,) = await current_link_states(database, [link], at(40))
    assert state.status is UP
    assert {p.probe_id: p.status for p in state.probes} == {"a": UP, "http": DOWN}


async def test_state_seconds_split_intervals_at_bucket_boundaries(database: Database) -> None:
    from collector.state_reads import state_seconds

    link = LinkSpec("l1", (ProbeSpec("a"),))
    all_samples = samples((0, "up"), (30, "down"), (60, "down"), (90, "up"), probe="a")
    await write_samples(database, all_samples)
    await StateDeriver(database, [link]).samples_stored(all_samples)
    # 50-second buckets from T0: UP 0-30, DOWN 30-90, UP 90-180, then UNKNOWN.
    found = await state_seconds(database, ["l1"], at(0), at(200), timedelta(seconds=50), T0)
    s = timedelta(seconds=1)
    assert found == {
        ("l1", at(0)): {UP: 30 * s, DOWN: 20 * s},
        ("l1", at(50)): {DOWN: 40 * s, UP: 10 * s},
        ("l1", at(100)): {UP: 50 * s},
        ("l1", at(150)): {UP: 30 * s, UNKNOWN: 20 * s},
    }
