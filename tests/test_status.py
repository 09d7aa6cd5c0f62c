"""Current probe and link status, by the SLA semantics of docs/design.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta

import pytest

from collector.database import Database
from collector.status import current_link_states, link_status, probe_state
from collector.writer import write_samples
from kernel.domain import LinkStatus, Outcome, ProbeState, Sample
from tests.builders import (
    DEGRADED,
    DOWN,
    INTERVAL,
    STALE,
    UNKNOWN,
    UP,
    LinkSpec,
    ProbeSpec,
    at,
    samples,
)


@dataclass(frozen=True)
class Case:
    id: str
    points: tuple[tuple[float, str], ...]
    now: float
    status: LinkStatus
    since: float | None
    confirm: int = 2
    stale_after: timedelta | None = STALE


PROBE_CASES = [
    Case("no samples", (), 10, UNKNOWN, None),
    Case("one up", ((0, "up"),), 10, UP, 0),
    Case("single down is unconfirmed: UP", ((0, "up"), (30, "up"), (60, "down")), 70, UP, 0),
    Case("single down first ever: UP", ((0, "down"),), 10, UP, 0),
    Case("two downs: DOWN since the first", ((0, "up"), (30, "down"), (60, "down")), 70, DOWN, 30),
    Case(
        "three downs: still since the first",
        ((0, "up"), (30, "down"), (60, "down"), (90, "down")),
        100,
        DOWN,
        30,
    ),
    Case("one up ends an outage", ((0, "down"), (30, "down"), (60, "up")), 70, UP, 60),
    Case(
        "unconfirmed down inside ups keeps UP since the start",
        ((0, "up"), (30, "down"), (60, "up")),
        70,
        UP,
        0,
    ),
    Case("confirm 1: one down is DOWN", ((0, "up"), (30, "down")), 40, DOWN, 30, confirm=1),
    Case("confirm 3: two downs are UP", ((0, "down"), (30, "down")), 40, UP, 0, confirm=3),
    Case("stale: UNKNOWN from last + stale_after", ((0, "up"),), 90, UNKNOWN, 90),
    Case("gap just under stale_after: still its outcome", ((0, "up"),), 89.999999, UP, 0),
    Case("stale outage: UNKNOWN", ((0, "down"), (30, "down")), 120, UNKNOWN, 120),
    Case("stale_after None is 3 x interval: fresh", ((0, "up"),), 89, UP, 0, stale_after=None),
    Case(
        "stale_after None is 3 x interval: stale", ((0, "up"),), 90, UNKNOWN, 90, stale_after=None
    ),
    Case(
        "downs across a stale gap are not consecutive",
        ((0, "down"), (100, "down")),
        110,
        UP,
        100,
    ),
    Case(
        "downs exactly stale_after apart are consecutive", ((0, "down"), (90, "down")), 95, DOWN, 0
    ),
    Case("back after a stale gap: since the return", ((0, "up"), (200, "up")), 210, UP, 200),
    Case("degraded sample: DEGRADED", ((0, "up"), (30, "degraded")), 40, DEGRADED, 30),
    Case("degraded run: since its first", ((0, "degraded"), (30, "degraded")), 40, DEGRADED, 0),
    Case("unknown outcome: UNKNOWN", ((0, "up"), (30, "unknown")), 40, UNKNOWN, 30),
    Case(
        "unknown outcome then stale: one UNKNOWN since the sample",
        ((0, "up"), (30, "unknown")),
        500,
        UNKNOWN,
        30,
    ),
    Case("samples after now are ignored", ((0, "up"), (60, "down"), (90, "down")), 30, UP, 0),
]


@pytest.mark.parametrize("case", PROBE_CASES, ids=[c.id for c in PROBE_CASES])
def test_probe_state(case: Case) -> None:
    state = probe_state(
        samples(*case.points),
        interval=INTERVAL,
        confirm=case.confirm,
        stale_after=case.stale_after,
        now=at(case.now),
        kind="icmp",
        probe_id="icmp",
    )
    assert (state.status, state.since) == (
        case.status,
        None if case.since is None else at(case.since),
    )


def test_probe_state_reports_the_latest_measurement() -> None:
    points = [
        Sample("l", "p", at(0), Outcome.UP, rtt_ms=1.0, loss_pct=0.0),
        Sample("l", "p", at(30), Outcome.DOWN, loss_pct=100.0, error="timeout"),
    ]
    state = probe_state(
        points,
        interval=INTERVAL,
        confirm=2,
        stale_after=None,
        now=at(40),
        kind="icmp",
        probe_id="p",
    )
    assert state == ProbeState("p", "icmp", UP, at(0), at(30), None, 100.0, "timeout")


def probe(status: LinkStatus, since: float | None) -> ProbeState:
    return ProbeState("p", "icmp", status, None if since is None else at(since), None)


LINK_CASES: list[tuple[str, Sequence[ProbeState], LinkStatus, float | None]] = [
    ("no probes: UNKNOWN", [], UNKNOWN, None),
    ("one up", [probe(UP, 0)], UP, 0),
    ("probes disagree: down wins", [probe(UP, 0), probe(DOWN, 50)], DOWN, 50),
    ("two down: from the earliest", [probe(DOWN, 50), probe(DOWN, 20)], DOWN, 20),
    ("up and unknown: UP", [probe(UNKNOWN, 10), probe(UP, 40)], UP, 40),
    ("up and degraded: DEGRADED", [probe(UP, 0), probe(DEGRADED, 60)], DEGRADED, 60),
    ("down beats degraded", [probe(DEGRADED, 0), probe(DOWN, 60)], DOWN, 60),
    ("all unknown", [probe(UNKNOWN, 10), probe(UNKNOWN, None)], UNKNOWN, 10),
    ("up since latest change of any probe", [probe(UP, 10), probe(UP, 70)], UP, 70),
]


@pytest.mark.parametrize(
    ("states", "status", "since"),
    [case[1:] for case in LINK_CASES],
    ids=[case[0] for case in LINK_CASES],
)
def test_link_status(states: Sequence[ProbeState], status: LinkStatus, since: float | None) -> None:
    assert link_status(states) == (status, None if since is None else at(since), True)


def test_a_status_older_than_the_samples_read_is_a_lower_bound() -> None:
    """With only the newest samples read, a status running back to the oldest of them
    began then or earlier: the portal must not present that time as a change."""
    points = samples((0, "up"), (30, "up"), (60, "up"))
    common = {
        "interval": INTERVAL,
        "confirm": 2,
        "stale_after": None,
        "now": at(70),
        "kind": "icmp",
        "probe_id": "p",
    }
    truncated = probe_state(points, complete=False, **common)  # type: ignore[arg-type]
    assert (truncated.since, truncated.since_exact) == (at(0), False)
    whole = probe_state(points, complete=True, **common)  # type: ignore[arg-type]
    assert (whole.since, whole.since_exact) == (at(0), True)
    changed = probe_state(samples((0, "down"), (30, "down"), (60, "up")), complete=False, **common)  # type: ignore[arg-type]
    assert (changed.status, changed.since, changed.since_exact) == (UP, at(60), True)
    assert link_status([truncated, changed]) == (UP, at(60), True)
    assert link_status([truncated]) == (UP, at(0), False)


def spec(probe_id: str, kind: str) -> ProbeSpec:
    """A probe with no stale_after of its own: 3 x its interval."""
    return ProbeSpec(probe_id, kind, stale_after=None)


async def test_current_link_states_from_the_database(database: Database) -> None:
    icmp, http = spec("icmp", "icmp"), spec("http", "http")
    links = [
        LinkSpec("ok", (icmp, http), customer="acme", description="Acme HQ"),
        LinkSpec("broken", (icmp,), customer="acme", description="Acme branch"),
        LinkSpec("new", (icmp,), customer="globex", description="Globex"),
        LinkSpec("flaky", (icmp,), customer="globex", description="Globex DR"),
    ]
    history = [(s, "up") for s in range(0, 3600, 30)]
    await write_samples(
        database,
        [
            *samples(*history, link="ok", probe="icmp"),
            *samples(*history[:-1], (3570, "down"), link="ok", probe="http"),
            *samples(*history[:-3], (3510, "down"), (3540, "down"), (3570, "down"), link="broken"),
            *samples(*history, link="flaky"),
            *samples((4000, "down"), link="flaky"),  # after "now": not yet observed
        ],
    )
    states = await current_link_states(database, links, at(3580))
    summary = [(s.link_id, s.customer_id, s.status, s.since) for s in states]
    assert summary == [
        ("ok", "acme", UP, at(0)),
        ("broken", "acme", DOWN, at(3510)),
        ("new", "globex", UNKNOWN, None),
        ("flaky", "globex", UP, at(0)),
    ]
    ok_probes = {p.probe_id: (p.status, p.last_observed_at) for p in states[0].probes}
    assert ok_probes == {"icmp": (UP, at(3570)), "http": (UP, at(3570))}
    assert all(p.last_observed_at.tzinfo is UTC for p in states[0].probes)  # type: ignore[union-attr]


async def test_current_link_states_reads_only_recent_history(database: Database) -> None:
    links = [LinkSpec("long", (spec("icmp", "icmp"),), customer="acme", description="")]
    await write_samples(database, samples(*[(s, "up") for s in range(0, 7200, 30)], link="long"))
    (state,) = await current_link_states(database, links, at(7200), history=timedelta(minutes=10))
    # Up all along; within ten minutes of history the earliest visible start is shown.
    assert state.status is UP
    assert at(7200 - 700) <= state.since <= at(7200 - 600)  # type: ignore[operator]
