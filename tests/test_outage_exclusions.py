"""What excluded maintenance takes out of one outage, per contract, by the engine's rule
(`sla.report.outage_exclusions`): the figure the outage lists mark their rows with. A
redundant group's time is excluded only while every member is in qualifying work, as
`compute_window` excludes it, so a mark never claims time the credit still counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from kernel.domain import MaintenanceWindow
from sla.report import outage_exclusions
from tests.portal_kit import portal_config

CONFIG = portal_config("""
customers:
  - {id: acme, name: Acme Corp, timezone: Europe/Berlin}
links:
  - {id: hq, customer: acme, probes: [{id: icmp, kind: icmp, host: 127.0.0.1}]}
  - {id: dr, customer: acme, probes: [{id: icmp, kind: icmp, host: 127.0.0.2}]}
contracts:
  - {id: hq-alone, customer: acme, links: [hq], target: 99.5, window: week}
  - {id: pair, customer: acme, links: [hq, dr], group: redundant, target: 99.9,
     window: week}
""")
START = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # the outage of hq: 10:00 to 11:00
END = START + timedelta(hours=1)
ANNOUNCED = START - timedelta(days=7)  # well before the contracts' 72 h notice


def work(name: str, links: tuple[str, ...], start_min: int, end_min: int) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=name,
        starts_at=START + timedelta(minutes=start_min),
        ends_at=START + timedelta(minutes=end_min),
        announced_at=ANNOUNCED,
        link_ids=links,
    )


@dataclass(frozen=True)
class Case:
    name: str
    windows: tuple[MaintenanceWindow, ...]
    excluded_min: dict[str, int]  # contract -> minutes of the outage excluded
    named: dict[str, tuple[str, ...]]  # contract -> the windows named


CASES = [
    Case("no work", (), {"hq-alone": 0, "pair": 0}, {"hq-alone": (), "pair": ()}),
    Case(
        "work on hq alone excludes for hq's contract, not for the pair (dr could serve)",
        (work("hq-work", ("hq",), -30, 30),),
        {"hq-alone": 30, "pair": 0},
        {"hq-alone": ("hq-work",), "pair": ()},
    ),
    Case(
        "the pair is excluded only where both members' work overlaps",
        (work("hq-work", ("hq",), 0, 45), work("dr-work", ("dr",), 15, 90)),
        {"hq-alone": 45, "pair": 30},
        {"hq-alone": ("hq-work",), "pair": ("hq-work", "dr-work")},
    ),
    Case(
        "work on every link excludes for both",
        (work("all", (), -10, 70),),
        {"hq-alone": 60, "pair": 60},
        {"hq-alone": ("all",), "pair": ("all",)},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_contract_excludes_what_its_engine_would(case: Case) -> None:
    found = outage_exclusions(CONFIG, CONFIG.contracts, "hq", "acme", START, END, case.windows)
    assert {f.contract_id: f.excluded_us // 60_000_000 for f in found} == case.excluded_min
    assert {f.contract_id: tuple(w.id for w in f.windows) for f in found} == case.named
