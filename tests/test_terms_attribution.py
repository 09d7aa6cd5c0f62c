"""Outages the customer caused: the exclusion rule at its boundaries (pure), the contract
term's validation, and the whole story through the real database, the portal's form,
the API and the ledger."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from kernel.domain import LinkStatus, MaintenanceWindow
from sla.compute import Period, WindowResult, WindowTerms, compute_window
from sla.windows import parse_window

# --- the rule, pure ------------------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = parse_window("2026-W47", BERLIN)  # 604,800 s
START = WEEK.start
AFTER = WEEK.end + timedelta(days=1)
GOLD = WindowTerms(
    target_pct=Decimal("99.5"), fee=Decimal("250.00"), per_step_pct=Decimal("5"),
    cap_pct=Decimal("50"),
)  # fmt: skip
COUNT = replace(GOLD, customer_caused="count")
UP, DOWN, UNKNOWN = LinkStatus.UP, LinkStatus.DOWN, LinkStatus.UNKNOWN
H = 3600


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def link(*spans: tuple[float, float, LinkStatus]) -> list[Period]:
    """UP all week but for the given (start_h, end_h, status) spans."""
    periods, cursor = [], START
    for begin, finish, status in sorted(spans):
        if at(begin) > cursor:
            periods.append(Period(cursor, at(begin), UP))
        periods.append(Period(at(begin), at(finish), status))
        cursor = at(finish)
    periods.append(Period(cursor, WEEK.end, UP))
    return periods


OUTAGE = tuple(link((24, 26, DOWN)))  # two hours down on Tuesday


def maintenance(start_h: float, end_h: float, notice_h: float) -> MaintenanceWindow:
    return MaintenanceWindow(
        "mw", at(start_h), at(end_h), at(start_h) - timedelta(hours=notice_h), link_ids=("l",)
    )


@dataclass(frozen=True)
class Case:
    name: str
    attributed: tuple[tuple[float, float], ...]
    down_s: int
    excluded_s: int
    customer_caused_s: int
    outages: int
    periods: tuple[Period, ...] = OUTAGE
    terms: WindowTerms = GOLD
    planned: tuple[MaintenanceWindow, ...] = ()
    now: datetime = AFTER


CASES = [
    Case("nothing attributed: as before", (), 2 * H, 0, 0, 1),
    Case("the whole outage, excluded", ((24, 26),), 0, 2 * H, 2 * H, 0),
    Case("its first hour", ((24, 25),), H, H, H, 1),
    Case("its middle hour splits it in two", ((24.5, 25.5),), H, H, H, 2),
    Case("up time around it is never excused", ((20, 30),), 0, 2 * H, 2 * H, 0),
    Case("ending where the outage begins: nothing", ((22, 24),), 2 * H, 0, 0, 1),
    Case("one second of it", ((25, 25 + 1 / H),), 2 * H - 1, 1, 1, 2),
    Case("outside the window", ((-5, -1),), 2 * H, 0, 0, 1),
    Case(
        "overlapping announced maintenance: counted once, as maintenance",
        ((24, 26),), 0, 3 * H, H, 0, planned=(maintenance(25, 27, notice_h=96),),
    ),
    Case(
        "maintenance announced too late excludes nothing; the attribution still does",
        ((24, 26),), 0, 2 * H, 2 * H, 0, planned=(maintenance(25, 27, notice_h=1),),
    ),
    Case(
        "unknown time in it: excluded takes precedence",
        ((24, 26),), 0, 2 * H, 2 * H, 0, periods=tuple(link((24, 26, UNKNOWN))),
    ),
    Case("count: attributed, and counted as down", ((24, 26),), 2 * H, 0, 2 * H, 1, terms=COUNT),
    Case("count, part of it", ((24, 25),), 2 * H, 0, H, 1, terms=COUNT),
    Case("a running window: only what is measured", ((24, 26),), 0, H, H, 0, now=at(25)),
]  # fmt: skip


def compute(case: Case) -> WindowResult:
    spans = [(at(a), at(b)) for a, b in case.attributed]
    return compute_window(
        WEEK, case.terms, [case.periods], [list(case.planned)], case.now, customer_caused=[spans]
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_customer_caused_time(case: Case) -> None:
    result = compute(case)
    assert result.down_us == case.down_s * 1_000_000
    assert result.excluded_us == case.excluded_s * 1_000_000
    assert result.customer_caused_us == case.customer_caused_s * 1_000_000
    assert len(result.outages) == case.outages
    assert sum((b - a) // timedelta(microseconds=1) for a, b in result.customer_caused) == (
        result.customer_caused_us
    )


def test_nothing_attributed_computes_exactly_as_before() -> None:
    for periods, planned in ((list(OUTAGE), []), (link((1, 90, DOWN)), [maintenance(2, 3, 100)])):
        before = compute_window(WEEK, GOLD, [periods], [planned], AFTER)
        assert compute_window(WEEK, GOLD, [periods], [planned], AFTER, customer_caused=[[]]) == (
            before
        )
        assert replace(before, customer_caused_us=0) == before


def test_the_excluded_outage_earns_no_credit_and_the_counted_one_does() -> None:
    spans = [[(at(24), at(26))]]
    excluded = compute_window(WEEK, GOLD, [OUTAGE], [[]], AFTER, customer_caused=spans)
    counted = compute_window(WEEK, COUNT, [OUTAGE], [[]], AFTER, customer_caused=spans)
    plain = compute_window(WEEK, GOLD, [OUTAGE], [[]], AFTER)
    assert excluded.availability == 1
    assert excluded.credit.amount == Decimal("0.00")
    assert excluded.eligible_us == (604_800 - 2 * H) * 1_000_000
    # 7,200 s of 604,800: 98.8095 %, 0.69 points short: 2 steps of 5 % of 250.00.
    assert counted.availability == Fraction(604_800 - 2 * H, 604_800) == plain.availability
    assert (counted.credit.amount, plain.credit.amount) == (Decimal("25.00"), Decimal("25.00"))
    # The budget excludes it as well: the whole window minus the excluded time.
    assert excluded.budget_us == Fraction(5, 1000) * (604_800 - 2 * H) * 1_000_000


GROUP_CASES = [
    ("one member's attributed outage while the other is up", [[(24, 26)], []],
     [list(OUTAGE), link()], 0, 0, 0),
    ("both down, one attributed: the group is down", [[(24, 26)], []],
     [list(OUTAGE), list(OUTAGE)], 2 * H, 0, 0),
    ("both down, both attributed: excluded", [[(24, 26)], [(24, 26)]],
     [list(OUTAGE), list(OUTAGE)], 0, 2 * H, 2 * H),
    ("both down, one attributed, the other in maintenance", [[(24, 26)], []],
     [list(OUTAGE), list(OUTAGE)], 0, 2 * H, 2 * H),
]  # fmt: skip


@pytest.mark.parametrize("case", GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_a_redundant_group_is_excluded_only_while_every_member_is(
    case: tuple[str, list[list[tuple[float, float]]], list[list[Period]], int, int, int],
) -> None:
    name, attributed, members, down_s, excluded_s, caused_s = case
    planned: list[list[MaintenanceWindow]] = [[], []]
    if "maintenance" in name:
        planned[1] = [maintenance(23, 27, notice_h=96)]
    result = compute_window(
        WEEK,
        GOLD,
        members,
        planned,
        AFTER,
        customer_caused=[[(at(a), at(b)) for a, b in spans] for spans in attributed],
    )
    assert (result.down_us, result.excluded_us, result.customer_caused_us) == (
        down_s * 1_000_000,
        excluded_s * 1_000_000,
        caused_s * 1_000_000,
    )


def test_one_list_of_spans_per_member() -> None:
    with pytest.raises(ValueError, match="one list of customer-caused spans per member"):
        compute_window(WEEK, GOLD, [OUTAGE], [[]], AFTER, customer_caused=[[], []])


# --- the contract term ---------------------------------------------------------------------


def _config_with(term: str) -> str:
    from tests.portal_kit import CONFIG_TEXT

    return CONFIG_TEXT.replace(
        'window: week,\n     fee: "250.00"', f'window: week, {term},\n     fee: "250.00"', 1
    )


CONFIG_MISTAKES = [
    ("customer_caused: ignore", "contracts[0].customer_caused: 'ignore' is not allowed; "
     "use one of 'exclude' or 'count'"),
    ("customer_caused: 1", "contracts[0].customer_caused: 1 is not allowed; "
     "use one of 'exclude' or 'count'"),
    ("customer_caused: Exclude", "contracts[0].customer_caused: 'Exclude' is not allowed; "
     "use one of 'exclude' or 'count'"),
]  # fmt: skip


@pytest.mark.parametrize(("term", "message"), CONFIG_MISTAKES, ids=[m[0] for m in CONFIG_MISTAKES])
def test_a_mistaken_term_is_named_with_its_value_and_what_is_allowed(
    term: str, message: str
) -> None:
    from kernel.config import parse_config
    from kernel.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config(_config_with(term), source="contracts.yaml")
    assert [p.path + ": " + p.message for p in caught.value.problems] == [message]


def test_the_term_defaults_to_exclude_and_a_version_may_count() -> None:
    from datetime import UTC

    from kernel.config import parse_config
    from tests.portal_kit import CONFIG_TEXT

    config = parse_config(CONFIG_TEXT, source="contracts.yaml")
    moment = datetime(2026, 11, 18, tzinfo=UTC)
    assert all(
        c.terms_at(moment, config.plans).customer_caused == "exclude"  # type: ignore[union-attr]
        for c in config.contracts
    )
    text = _config_with(
        "customer_caused: count, versions: [{effective_from: 2027-01-01T00:00:00Z, "
        "customer_caused: exclude}]"
    )
    gold = parse_config(text, source="contracts.yaml").contracts[0]
    assert gold.terms_at(moment, []).customer_caused == "count"  # type: ignore[union-attr]
    later = datetime(2027, 2, 1, tzinfo=UTC)
    assert gold.terms_at(later, []).customer_caused == "exclude"  # type: ignore[union-attr]


# --- the whole story: portal form, customer's page, API, ledger, audit, report ------------

from collector import Database  # noqa: E402
from kernel.domain import Sample  # noqa: E402
from sla.ledger import approve, list_rows, refresh_ledger  # noqa: E402
from tests.helpers import text_of  # noqa: E402
from tests.portal_kit import NOW, minutes, running_portal, samples  # noqa: E402

OUTAGE_START = NOW - timedelta(minutes=60)
OUTAGE_END = NOW - timedelta(minutes=30)


def cpe_history(now: datetime) -> list[Sample]:
    """acme-ber-2 (contract acme-ber-silver: 99.0 %, 90.00 EUR a month, 5 % a step, cap
    30 %) up for three hours but for 30 minutes down, an hour before `now`."""
    from kernel.domain import Outcome

    out = samples("acme-ber-2", minutes(now - timedelta(hours=3), OUTAGE_START), rtt_ms=8.0)
    out += samples("acme-ber-2", minutes(OUTAGE_START, OUTAGE_END), Outcome.DOWN, loss_pct=100.0)
    out += samples("acme-ber-2", minutes(OUTAGE_END, now), rtt_ms=8.0)
    return out


def silver(rows: list, kind: str = "window") -> list:  # type: ignore[type-arg]
    return [
        r
        for r in rows
        if r.contract_id == "acme-ber-silver" and r.window_label == "2026-11" and r.kind == kind
    ]


async def test_an_attribution_from_the_noc_to_a_withdrawal_after_approval(
    database: Database,
) -> None:
    async with running_portal(database, history=cpe_history) as kit:
        # Operations attribute the whole outage from the link page's form.
        await kit.sign_in("olga")
        page = await kit.page("/links/acme-ber-2")
        assert "Outages the customer caused" in page
        token = page.split('name="csrf_token" value="', 2)[2].split('"', 1)[0]
        form = {"outage_start": OUTAGE_START.isoformat(), "reason": "CPE powered off on site"}
        forged = await kit.client.post(
            "/links/acme-ber-2/attributions", data={**form, "csrf_token": "x"},
            allow_redirects=False,
        )  # fmt: skip
        assert forged.status == 403
        assert await list_rows(database) == []  # nothing stored, nothing recomputed
        done = await kit.client.post(
            "/links/acme-ber-2/attributions", data={**form, "csrf_token": token},
            allow_redirects=False,
        )  # fmt: skip
        assert done.status == 303, await done.text()
        assert done.headers["Location"].startswith("/links/acme-ber-2?done=attributed")
        again = await kit.client.post(
            "/links/acme-ber-2/attributions", data={**form, "csrf_token": token},
            allow_redirects=False,
        )  # fmt: skip
        assert again.status == 409
        assert "overlaps attribution #" in await again.text()

        # The month's row follows at once: the outage is excluded, nothing is owed.
        (row,) = silver(await list_rows(database))
        assert (row.status, row.down_s, row.credit_amount) == ("open", 0, Decimal("0.00"))
        assert row.extra_figures["customer_caused_s"] == "1800"
        assert row.availability_pct == Decimal("100.0000")

        # The customer sees it beside the outage: why, who, when, and what it means.
        await kit.sign_out()
        await kit.sign_in("alice")
        seen = text_of(await kit.page("/links/acme-ber-2"))
        assert "Attributed to the customer:" in seen
        assert "because: CPE powered off on site" in seen
        assert "Recorded by olga on 2026-11-18 13:00 CET" in seen
        assert "Excluded from availability under acme-ber-silver" in seen
        assert "Outages the customer caused" not in seen  # no forms for customers
        refused = await kit.client.post(
            "/links/acme-ber-2/attributions", data={**form, "csrf_token": token},
            allow_redirects=False,
        )  # fmt: skip
        assert refused.status in (403, 404)
        report = text_of(await kit.page("/reports/monthly?customer=acme&month=2026-11"))
        assert "Outages the customer caused." in report
        assert "CPE powered off on site" in report
        assert "acme-ber-silver: exclude, excluded from availability" in report

        # The month closes and billing approves the (zero) credit.
        kit.clock.now = datetime(2026, 12, 3, 12, tzinfo=NOW.tzinfo)
        await refresh_ledger(database, kit.config, ["2026-11"], kit.clock.now)
        (row,) = silver(await list_rows(database))
        assert row.status == "closed"
        await approve(database, [row.id], "bill", kit.clock.now, "monitoring began this month")

        # The customer disputes it: operations withdraw the attribution through the API.
        from portal.keys import ACCOUNTS

        accounts = kit.client.app[ACCOUNTS]
        olga = await accounts.user("olga")
        assert olga is not None
        _, secret = await accounts.create_token(olga, "noc", kit.clock.now)
        auth = {"Authorization": f"Bearer {secret}"}
        listed = await (
            await kit.client.get("/api/v1/links/acme-ber-2/attributions", headers=auth)
        ).json()
        (made,) = listed["items"]
        assert (made["in_force"], made["duration_s"], made["reason"]) == (
            True, 1800, "CPE powered off on site",
        )  # fmt: skip
        withdrawn = await kit.client.post(
            f"/api/v1/links/acme-ber-2/attributions/{made['id']}/withdraw",
            json={"reason": "the customer shows the CPE was on"},
            headers=auth,
        )
        assert withdrawn.status == 200, await withdrawn.text()
        body = await withdrawn.json()
        assert (body["in_force"], body["withdrawn_by"]) == (False, "olga")
        twice = await kit.client.post(
            f"/api/v1/links/acme-ber-2/attributions/{made['id']}/withdraw",
            json={"reason": "again"},
            headers=auth,
        )
        assert twice.status == 409

        # The approved row stands; an adjustment awaits approval with the difference:
        # 30 of 182 measured minutes down, 83.5 %: 31 steps of 5 %, capped at 30 % of 90.00.
        rows = await list_rows(database)
        (settled,) = silver(rows)
        (adjustment,) = silver(rows, "adjustment")
        assert (settled.status, settled.credit_amount) == ("approved", Decimal("0.00"))
        assert (adjustment.status, adjustment.amount) == ("closed", Decimal("27.00"))
        assert adjustment.parent_id == settled.id
        assert adjustment.reason is not None
        assert adjustment.reason.startswith(
            f"withdrawal of outage attribution #{made['id']} by olga "
            "(the customer shows the CPE was on) changed availability from 100.0000 % to"
        )
        assert adjustment.extra_figures["customer_caused_s"] == "0"

        # Billing sees both acts in the audit trail; the customer the withdrawn one.
        await kit.sign_out()
        await kit.sign_in("bill")
        trail = text_of(await kit.page("/billing/audit"))
        assert "olga attributed" in trail
        assert "olga withdrawn" in trail
        assert "the customer shows the CPE was on" in trail
        await kit.sign_out()
        await kit.sign_in("alice")
        seen = text_of(await kit.page("/links/acme-ber-2"))
        assert "Withdrawn by olga" in seen
        assert "counts as an outage again" in seen


async def test_the_api_refuses_what_is_not_inside_an_outage(database: Database) -> None:
    async with running_portal(database, history=cpe_history) as kit:
        from portal.keys import ACCOUNTS

        accounts = kit.client.app[ACCOUNTS]
        ada = await accounts.user("ada")
        assert ada is not None
        _, secret = await accounts.create_token(ada, "noc", kit.clock.now)
        auth = {"Authorization": f"Bearer {secret}"}
        url = "/api/v1/links/acme-ber-2/attributions"

        async def post(body: dict[str, str]) -> tuple[int, str]:
            answer = await kit.client.post(url, json=body, headers=auth)
            return answer.status, (await answer.json())["error"]["message"]

        start = OUTAGE_START.isoformat()
        cases = [
            ({"outage_start": (OUTAGE_START + timedelta(minutes=1)).isoformat(), "reason": "x"},
             404, "acme-ber-2 has no outage that began at 2026-11-18T11:01:00Z"),
            ({"outage_start": start, "ends_at": NOW.isoformat(), "reason": "x"},
             400, "2026-11-18T11:00:00Z to 2026-11-18T12:00:00Z is not inside the outage of "
             "acme-ber-2 (2026-11-18T11:00:00Z to 2026-11-18T11:30:00Z)"),
            ({"outage_start": start, "starts_at": (OUTAGE_START - timedelta(seconds=1)).isoformat(),
              "reason": "x"}, 400, "is not inside the outage"),
            ({"outage_start": start, "reason": "  "}, 400, "reason is required"),
            ({"outage_start": start, "reason": "x", "why": "y"}, 400, "unknown field 'why'"),
        ]  # fmt: skip
        for body, status, message in cases:
            got = await post(body)
            assert got[0] == status, (body, got)
            assert message in got[1], (body, got)
        # Part of it, from its start to the minute after: exactly what was asked.
        part = {
            "outage_start": start,
            "ends_at": (OUTAGE_START + timedelta(minutes=1)).isoformat(),
            "reason": "the customer's own maintenance",
        }
        answer = await kit.client.post(url, json=part, headers=auth)
        assert answer.status == 200
        made = await answer.json()
        assert (made["starts_at"], made["duration_s"], made["created_by"]) == (
            "2026-11-18T11:00:00+00:00", 60, "ada",
        )  # fmt: skip
        (row,) = silver(await list_rows(database))
        assert (row.down_s, row.extra_figures["customer_caused_s"]) == (1740, "60")


def test_report_sla_notes_the_time_attributed_and_what_the_contract_does_with_it() -> None:
    from sla.attributions import report_notes
    from sla.report import ContractWindow, Subject
    from tests.portal_kit import portal_config

    config = portal_config()
    gold = config.contracts[0]
    terms = gold.terms_at(NOW, config.plans)
    assert terms is not None
    spans = [[(at(24), at(25))]]
    subject = Subject("acme-fra-1", ("acme-fra-1",))
    excluded = compute_window(WEEK, GOLD, [list(OUTAGE)], [[]], AFTER, customer_caused=spans)
    untouched = compute_window(WEEK, GOLD, [list(OUTAGE)], [[]], AFTER)
    items = [
        ContractWindow(gold, "acme", subject, terms, excluded),
        ContractWindow(gold, "acme", subject, terms, untouched),
        ContractWindow(gold, "acme", subject, terms.model_copy(update={"customer_caused": "count"}),
                       excluded),
    ]  # fmt: skip
    assert report_notes(items) == [
        "acme-fra-gold acme-fra-1 2026-W47: 1 h of outage attributed to the customer, "
        "excluded from availability, like announced maintenance (customer_caused: exclude)",
        "acme-fra-gold acme-fra-1 2026-W47: 1 h of outage attributed to the customer, "
        "counted as downtime, as the contract says (customer_caused: count)",
    ]
