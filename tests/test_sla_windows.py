"""A window exists for a contract only from its own start in its own zone.

On Sunday evening UTC Tokyo is already in next week while Berlin and New York are not:
the rule is checked at each boundary (table-driven, DST weeks included), then where
people meet it with a fixed clock: the ledger's rows, the NOC's compliance card, the
customer's credits page, the SLA report API and the monthly report page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest

from collector import Database
from kernel.domain import Outcome, Sample
from portal.keys import ACCOUNTS
from sla.ledger import list_rows, refresh_running
from sla.report import Planned, WindowNotBegun, WindowNotMonitored, plan_windows
from sla.windows import parse_window
from tests.portal_kit import (
    PortalKit,
    _users_yaml,
    minutes,
    portal_config,
    running_portal,
    samples,
)

# Sunday 2026-12-06 23:00 UTC: Monday 08:00 in Tokyo (2026-W50 running), Monday 00:00 in
# Berlin (W50 begins this very instant), Sunday 18:00 in New York (still W49).
SUNDAY_23 = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Case:
    name: str
    zone: str
    label: str
    now: datetime
    begun: bool


CASES = [
    Case("Tokyo is in W50 on Sunday 23:00 UTC", "Asia/Tokyo", "2026-W50", SUNDAY_23, True),
    Case("Tokyo's W50 began Sunday 15:00 UTC", "Asia/Tokyo", "2026-W50",
         datetime(2026, 12, 6, 15, 0, tzinfo=UTC), True),
    Case("Tokyo's W50 not at 14:59:59 UTC", "Asia/Tokyo", "2026-W50",
         datetime(2026, 12, 6, 15, 0, tzinfo=UTC) - SECOND, False),
    Case("Berlin's W50 begins at Sunday 23:00 UTC", "Europe/Berlin", "2026-W50", SUNDAY_23, True),
    Case("Berlin's W50 not a second earlier", "Europe/Berlin", "2026-W50",
         SUNDAY_23 - SECOND, False),
    Case("New York's W50 not on Sunday 23:00 UTC", "America/New_York", "2026-W50", SUNDAY_23,
         False),
    Case("New York's W50 begins Monday 05:00 UTC", "America/New_York", "2026-W50",
         datetime(2026, 12, 7, 5, 0, tzinfo=UTC), True),
    # The week after the spring change (Berlin, 29 March 2026) begins at 00:00 CEST.
    Case("Berlin's W14 begins 22:00 UTC after DST starts", "Europe/Berlin", "2026-W14",
         datetime(2026, 3, 29, 22, 0, tzinfo=UTC), True),
    Case("Berlin's W14 not at 22:59 CET-wise", "Europe/Berlin", "2026-W14",
         datetime(2026, 3, 29, 22, 0, tzinfo=UTC) - SECOND, False),
    # The week after the autumn change (25 October 2026) begins at 00:00 CET again.
    Case("Berlin's W44 begins 23:00 UTC after DST ends", "Europe/Berlin", "2026-W44",
         datetime(2026, 10, 25, 23, 0, tzinfo=UTC), True),
    Case("Berlin's W44 not during the repeated hour's end", "Europe/Berlin", "2026-W44",
         datetime(2026, 10, 25, 23, 0, tzinfo=UTC) - SECOND, False),
    Case("New York's W11 begins 04:00 UTC after its spring change", "America/New_York",
         "2026-W11", datetime(2026, 3, 9, 4, 0, tzinfo=UTC), True),
    Case("New York's W11 not at 03:59:59 UTC", "America/New_York", "2026-W11",
         datetime(2026, 3, 9, 4, 0, tzinfo=UTC) - SECOND, False),
    Case("Tokyo's January begins 15:00 UTC on New Year's Eve", "Asia/Tokyo", "2027-01",
         datetime(2026, 12, 31, 15, 0, tzinfo=UTC), True),
    Case("Berlin's January not yet then", "Europe/Berlin", "2027-01",
         datetime(2026, 12, 31, 15, 0, tzinfo=UTC), False),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_window_begins_at_its_own_start_in_its_own_zone(case: Case) -> None:
    window = parse_window(case.label, ZoneInfo(case.zone))
    assert window.has_begun(case.now) is case.begun
    # The same instant written in any zone gives the same answer.
    for zone in ("UTC", "Asia/Tokyo", "America/New_York", "Europe/Berlin"):
        assert window.has_begun(case.now.astimezone(ZoneInfo(zone))) is case.begun


CONFIG_TEXT = """
customers:
  - {id: kaisha, name: Kaisha KK, timezone: Asia/Tokyo}
  - {id: acme, name: Acme Corp, timezone: Europe/Berlin}
  - {id: globex, name: Globex Inc, timezone: America/New_York}
links:
  - {id: tokyo-1, customer: kaisha, probes: [{id: icmp, kind: icmp, host: 127.0.0.1,
      interval: 10m}]}
  - {id: berlin-1, customer: acme, probes: [{id: icmp, kind: icmp, host: 127.0.0.2,
      interval: 10m}]}
  - {id: nyc-1, customer: globex, probes: [{id: icmp, kind: icmp, host: 127.0.0.3,
      interval: 10m}]}
contracts:
  - {id: tokyo-weekly, customer: kaisha, links: [tokyo-1], target: 99.5, window: week,
     fee: "40000", currency: JPY}
  - {id: berlin-weekly, customer: acme, links: [berlin-1], target: 99.5, window: week,
     fee: "250.00", currency: EUR}
  - {id: nyc-weekly, customer: globex, links: [nyc-1], target: 99.9, window: week,
     fee: "1200.00", currency: USD}
users:
"""


CONFIG = portal_config(CONFIG_TEXT + _users_yaml())


def _ids(planned: Sequence[Planned]) -> list[str]:
    return [p.contract.id for p in planned]


@pytest.mark.parametrize(
    ("now", "todo", "not_begun"),
    [
        (SUNDAY_23 - timedelta(hours=1), ["tokyo-weekly"], ["berlin-weekly", "nyc-weekly"]),
        (SUNDAY_23, ["tokyo-weekly", "berlin-weekly"], ["nyc-weekly"]),
        (SUNDAY_23 + timedelta(hours=6), ["tokyo-weekly", "berlin-weekly", "nyc-weekly"], []),
    ],
    ids=["Sunday 22:00 UTC", "Sunday 23:00 UTC", "Monday 05:00 UTC"],
)
def test_every_contract_takes_a_label_in_its_own_zone(
    now: datetime, todo: list[str], not_begun: list[str]
) -> None:
    plan = plan_windows(CONFIG, "2026-W50", now)
    assert (_ids(plan.todo), _ids(plan.not_begun)) == (todo, not_begun)
    plan.check()  # Tokyo's is running: the label is not refused as a whole
    if not_begun:
        assert plan.notes() == [
            "2026-W50 has not begun yet: it begins "
            + "; ".join(
                {
                    "berlin-weekly": "2026-12-07 00:00 CET (Europe/Berlin) for berlin-weekly",
                    "nyc-weekly": "2026-12-07 00:00 EST (America/New_York) for nyc-weekly",
                }[i]
                for i in not_begun
            )
        ]


def test_a_label_begun_nowhere_is_refused_with_when_it_begins() -> None:
    plan = plan_windows(CONFIG, "2026-W50", SUNDAY_23, customer_id="globex")
    with pytest.raises(WindowNotBegun) as refused:
        plan.check()
    assert str(refused.value) == (
        "2026-W50 has not begun yet: it begins 2026-12-07 00:00 EST (America/New_York) "
        "for nyc-weekly"
    )
    assert refused.value.exit_code == 2


def test_only_windows_that_had_ended_before_the_first_data_are_left_unmeasured() -> None:
    first = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # Wednesday of W49, all links
    began = {"tokyo-1": first, "berlin-1": first}  # nyc-1 never measured
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    before = plan_windows(CONFIG, "2026-W48", now, monitored_from=began)
    assert _ids(before.unmonitored) == ["tokyo-weekly", "berlin-weekly", "nyc-weekly"]
    with pytest.raises(WindowNotMonitored, match="monitoring of tokyo-weekly, berlin-weekly "
                       "began after it ended"):  # fmt: skip
        before.check()
    # The week the data begins in, and the running week of a link never measured yet
    # (operations must see it has no data), both count.
    running = plan_windows(CONFIG, "2026-W49", now, monitored_from=began)
    assert _ids(running.todo) == ["tokyo-weekly", "berlin-weekly", "nyc-weekly"]


# --- where people meet it -------------------------------------------------------------------


def _week_of_samples(now: datetime) -> list[Sample]:
    """Every link up every ten minutes since Monday 2026-11-30 (W49) in UTC."""
    start = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    out = []
    for link_id in ("tokyo-1", "berlin-1", "nyc-1"):
        out += samples(link_id, minutes(start, now, timedelta(minutes=10)), Outcome.UP,
                       rtt_ms=5.0, loss_pct=0.0)  # fmt: skip
    return out


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


async def test_on_sunday_evening_only_tokyo_is_in_next_week_everywhere(
    database: Database,
) -> None:
    now = SUNDAY_23 - timedelta(hours=1)  # 22:00 UTC: W50 only in Tokyo
    async with running_portal(database, CONFIG, now=now, history=_week_of_samples) as kit:
        await refresh_running(kit.db, kit.config, now)
        rows = await list_rows(kit.db)
        assert sorted((r.contract_id, r.window_label, r.status) for r in rows) == [
            ("berlin-weekly", "2026-W49", "open"),
            ("nyc-weekly", "2026-W49", "open"),
            ("tokyo-weekly", "2026-W49", "open"),  # in its grace: ended 15:00 UTC
            ("tokyo-weekly", "2026-W50", "open"),
        ]

        # The NOC's card names each zone's own week, and counts each contract once.
        await kit.sign_in("olga")
        compliance = _text((await kit.page("/noc")).split('id="compliance-heading"')[1])
        this_week = compliance.split("This week")[1].split("This month")[0]
        assert "2026-W49 (America/New_York, Europe/Berlin) · 2026-W50 (Asia/Tokyo)" in this_week
        assert "3 contract windows" in this_week
        await kit.sign_out()

        # Berlin's customer sees this week, not a week that starts tomorrow.
        await kit.sign_in("alice")
        credits = _text(await kit.page("/credits"))
        assert "2026-W49" in credits
        assert "2026-W50" not in credits
        # The API and the report page refuse a window that has not begun, alike: for the
        # API there is no such report yet (404), not a malformed request.
        token = await _token(kit, "alice")
        answer = await kit.client.get(
            "/api/v1/reports/sla?window=2026-W50",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status == 404
        message = (await answer.json())["error"]["message"]
        assert message == (
            "window='2026-W50' has not begun yet: it begins 2026-12-07 00:00 CET "
            "(Europe/Berlin) for berlin-weekly"
        )
        page = await kit.client.get("/reports/monthly?month=2027-01")
        assert page.status == 404
        assert (
            "month='2027-01' has not begun yet for Acme Corp: it begins 2027-01-01 00:00 CET"
            in (unescape(await page.text()))
        )

        # An hour later Berlin's week has begun, and its row appears.
        kit.clock.advance(timedelta(hours=1))
        await refresh_running(kit.db, kit.config, kit.clock.now)
        labels = sorted((r.contract_id, r.window_label) for r in await list_rows(kit.db))
        assert ("berlin-weekly", "2026-W50") in labels
        assert ("nyc-weekly", "2026-W50") not in labels


async def _token(kit: PortalKit, name: str) -> str:
    accounts = kit.client.server.app[ACCOUNTS]
    user = await accounts.user(name)
    assert user is not None
    _, secret = await accounts.create_token(user, "test", kit.clock())
    return secret
