"""Quarter and year windows beside weeks and months, and the annual credit cap.

Windows: each boundary of a quarter and a year in a DST zone and across years (lengths
are real elapsed time), label parsing and what it refuses, a `window: quarter` config.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import json
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from kernel.config import load_config, parse_config
from kernel.errors import ConfigError
from linkwatch.daemon import open_database
from sla.annual_cap import cap_credits, windows_in_year, year_cap
from sla.ledger import export_csv, list_rows
from sla.windows import WindowKind, label_kind, parse_window, window_containing
from tests.helpers import FAST_HASHER, linkwatch, text_of

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")  # southern DST: on in January, off in July
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Bounds:
    name: str
    label: str
    zone: ZoneInfo
    start_utc: datetime
    end_utc: datetime
    length: timedelta


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


BOUNDS = [
    # Berlin: CET (+1) until 29 March 2026, CEST (+2) until 25 October 2026.
    Bounds("Q1 loses the spring hour", "2026-Q1", BERLIN, utc(2025, 12, 31, 23),
           utc(2026, 3, 31, 22), timedelta(days=90) - HOUR),
    Bounds("Q2 is all summer time", "2026-Q2", BERLIN, utc(2026, 3, 31, 22),
           utc(2026, 6, 30, 22), timedelta(days=91)),
    Bounds("Q3 is all summer time", "2026-Q3", BERLIN, utc(2026, 6, 30, 22),
           utc(2026, 9, 30, 22), timedelta(days=92)),
    Bounds("Q4 gains the autumn hour and ends at New Year", "2026-Q4", BERLIN,
           utc(2026, 9, 30, 22), utc(2026, 12, 31, 23), timedelta(days=92) + HOUR),
    Bounds("a year has both changes: exactly 365 days", "2026", BERLIN,
           utc(2025, 12, 31, 23), utc(2026, 12, 31, 23), timedelta(days=365)),
    Bounds("a leap year: 366 days", "2028", BERLIN, utc(2027, 12, 31, 23),
           utc(2028, 12, 31, 23), timedelta(days=366)),
    Bounds("a leap year's Q1 has 29 February", "2028-Q1", BERLIN, utc(2027, 12, 31, 23),
           utc(2028, 3, 31, 22), timedelta(days=91) - HOUR),
    Bounds("New York's Q1 loses its hour on 8 March", "2026-Q1", NEW_YORK,
           utc(2026, 1, 1, 5), utc(2026, 4, 1, 4), timedelta(days=90) - HOUR),
    Bounds("Sydney's Q2 gains the hour when summer time ends", "2026-Q2", SYDNEY,
           utc(2026, 3, 31, 13), utc(2026, 6, 30, 14), timedelta(days=91) + HOUR),
    Bounds("Sydney's Q4 loses the hour when summer time starts", "2026-Q4", SYDNEY,
           utc(2026, 9, 30, 14), utc(2026, 12, 31, 13), timedelta(days=92) - HOUR),
    Bounds("Sydney's year begins in summer time", "2026", SYDNEY, utc(2025, 12, 31, 13),
           utc(2026, 12, 31, 13), timedelta(days=365)),
]  # fmt: skip


@pytest.mark.parametrize("case", BOUNDS, ids=[c.name for c in BOUNDS])
def test_quarters_and_years_run_from_local_midnight_for_their_real_length(case: Bounds) -> None:
    window = parse_window(case.label, case.zone)
    assert (window.start.astimezone(UTC), window.end.astimezone(UTC)) == (
        case.start_utc,
        case.end_utc,
    )
    assert window.length == case.length
    assert (window.start.hour, window.start.minute, window.start.day) == (0, 0, 1)
    assert window.label == case.label
    kind = window.kind
    # The instant of its start and the last microsecond before its end are inside it ...
    assert window_containing(kind, case.zone, case.start_utc) == window
    assert window_containing(kind, case.zone, case.end_utc - timedelta(microseconds=1)) == window
    # ... its end is in the next, and the microsecond before its start in the previous.
    assert window_containing(kind, case.zone, case.end_utc) == window.next()
    assert window_containing(kind, case.zone, case.start_utc - timedelta(microseconds=1)) == (
        window.previous()
    )
    assert window.next().start == window.end
    assert window.previous().end == window.start


@pytest.mark.parametrize(
    ("label", "following", "before"),
    [
        ("2026-Q4", "2027-Q1", "2026-Q3"),
        ("2026-Q1", "2026-Q2", "2025-Q4"),
        ("2026", "2027", "2025"),
        ("1999", "2000", "1998"),
    ],
)
def test_next_and_previous_cross_years(label: str, following: str, before: str) -> None:
    window = parse_window(label, BERLIN)
    assert (window.next().label, window.previous().label) == (following, before)


def test_new_years_eve_utc_is_already_next_year_east_of_greenwich() -> None:
    moment = utc(2026, 12, 31, 23)  # midnight in Berlin, 18:00 in New York
    assert window_containing("year", BERLIN, moment).label == "2027"
    assert window_containing("quarter", BERLIN, moment).label == "2027-Q1"
    assert window_containing("year", NEW_YORK, moment).label == "2026"
    assert window_containing("quarter", NEW_YORK, moment).label == "2026-Q4"
    assert parse_window("2027", BERLIN).has_begun(moment)
    assert not parse_window("2027", BERLIN).has_begun(moment - SECOND)
    assert not parse_window("2027-Q1", NEW_YORK).has_begun(moment)


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("2026-W47", "week"),
        ("2026-11", "month"),
        ("2026-Q3", "quarter"),
        ("2026", "year"),
        ("2026-Q5", "quarter"),  # its form is a quarter's; parse_window refuses it
        ("2026-q3", None),
        ("26", None),
        ("2026-", None),
        ("Q3 2026", None),
    ],
)
def test_a_label_names_its_kind_by_its_form(label: str, kind: str | None) -> None:
    assert label_kind(label) == kind


FORMS = (
    "use an ISO week like 2026-W47, a month like 2026-11, a quarter like 2026-Q3 or a year "
    "like 2026"
)


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("2026-Q0", "'2026-Q0': quarter must be Q1 to Q4"),
        ("2026-Q5", "'2026-Q5': quarter must be Q1 to Q4"),
        ("2026-Q03", f"'2026-Q03' is not a window; {FORMS}"),
        ("2026-q3", f"'2026-q3' is not a window; {FORMS}"),
        ("Q3", f"'Q3' is not a window; {FORMS}"),
        ("20265", f"'20265' is not a window; {FORMS}"),
        ("2026 ", f"'2026 ' is not a window; {FORMS}"),
        ("2026-13", "'2026-13': month must be 01 to 12"),
        ("2026-W54", "'2026-W54': 2026 has no ISO week 54"),
    ],
)
def test_a_bad_label_is_refused_naming_the_four_forms(label: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        parse_window(label, BERLIN)
    assert str(refused.value) == message


# --- the annual credit cap, as a pure rule -------------------------------------------------


@dataclass(frozen=True)
class CapCase:
    name: str
    credits: tuple[str, ...]  # one window's subject credits, in the contract's order
    used: str  # what the earlier windows of the year credit
    paid: tuple[str, ...]
    remaining: tuple[str, ...]  # what was left of the cap for each


CAP = Decimal("400.00")
CAP_CASES = [
    CapCase("well under the cap pays in full", ("300.00",), "0", ("300.00",), ("400.00",)),
    CapCase("reaching the cap exactly pays in full", ("100.00",), "300.00", ("100.00",),
            ("100.00",)),
    CapCase("the window that reaches it pays the remainder", ("300.00",), "300.00",
            ("100.00",), ("100.00",)),
    CapCase("a cent under the cap pays that cent", ("300.00",), "399.99", ("0.01",),
            ("0.01",)),
    CapCase("the windows after it pay nothing", ("300.00",), "400.00", ("0.00",), ("0.00",)),
    CapCase("more used than the cap (a manual adjustment) leaves nothing", ("5.00",),
            "450.00", ("0.00",), ("0.00",)),
    CapCase("no credit takes nothing", ("0.00",), "400.00", ("0.00",), ("0.00",)),
    CapCase("the subjects of a window take what is left in order",
            ("80.00", "80.00", "80.00"), "250.00", ("80.00", "70.00", "0.00"),
            ("150.00", "70.00", "0.00")),
]  # fmt: skip


@pytest.mark.parametrize("case", CAP_CASES, ids=[c.name for c in CAP_CASES])
def test_a_window_pays_at_most_what_the_year_left_of_the_cap(case: CapCase) -> None:
    capped = cap_credits(2026, [Decimal(c) for c in case.credits], CAP, Decimal(case.used), "EUR")
    assert tuple(f"{c.amount:.2f}" for c in capped) == case.paid
    assert tuple(f"{c.remaining:.2f}" for c in capped) == case.remaining
    assert tuple(f"{c.before:.2f}" for c in capped) == case.credits
    assert all(c.cap == CAP and c.year == 2026 for c in capped)
    assert [c.reduced for c in capped] == [
        Decimal(p) < Decimal(b) for p, b in zip(case.paid, case.credits, strict=True)
    ]


@pytest.mark.parametrize(
    ("fee", "windows", "pct", "currency", "cap"),
    [
        ("1000.00", 4, "10", "EUR", "400.00"),
        ("250.00", 12, "12.5", "EUR", "375.00"),
        ("99.99", 53, "3.333", "EUR", "176.63"),  # 176.6313..., cut
        ("99.99", 52, "3.333", "EUR", "173.29"),  # 173.2986...: cut, never rounded up to 173.30
        ("40000", 52, "7.5", "JPY", "156000"),
        ("12.345", 12, "10", "KWD", "14.814"),
        ("1000.00", 1, "0", "EUR", "0.00"),
    ],
)
def test_the_years_cap_is_its_percent_of_the_years_fees_cut_to_the_minor_unit(
    fee: str, windows: int, pct: str, currency: str, cap: str
) -> None:
    assert str(year_cap(Decimal(fee), windows, Decimal(pct), currency)) == cap


@pytest.mark.parametrize(
    ("kind", "zone", "year", "count"),
    [
        ("week", BERLIN, 2026, 52),  # W01 began on Monday 2025-12-29: 2025's
        ("week", BERLIN, 2024, 53),  # 2024 began on a Monday: 53 Mondays
        ("week", BERLIN, 2020, 52),  # 53 ISO weeks, but W01 began in 2019
        ("week", BERLIN, 2025, 52),  # 2025-12-29 (2026-W01) is a Monday of 2025
        ("month", BERLIN, 2026, 12),
        ("quarter", SYDNEY, 2026, 4),
        ("year", NEW_YORK, 2026, 1),
    ],
)
def test_a_year_holds_the_windows_that_start_in_it(
    kind: WindowKind, zone: ZoneInfo, year: int, count: int
) -> None:
    assert windows_in_year(kind, zone, year) == count


# --- config ---------------------------------------------------------------------------------

CONFIG_BASE: dict[str, Any] = {
    "customers": [{"id": "acme", "name": "ACME Corp", "timezone": "Europe/Berlin"}],
    "links": [
        {
            "id": "acme-hq",
            "customer": "acme",
            "probes": [{"id": "icmp", "kind": "icmp", "host": "127.0.0.1", "interval": "1h"}],
        }
    ],
    "contracts": [
        {
            "id": "acme-q",
            "customer": "acme",
            "links": ["acme-hq"],
            "target": 99.5,
            "window": "quarter",
            "fee": "1000.00",
            "credit": {"per_step": 15, "annual_cap_pct": 10},
        }
    ],
}


def _contract(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(CONFIG_BASE)
    data["contracts"][0].update(changes)
    return data


def test_a_quarterly_contract_with_an_annual_cap_is_a_valid_config() -> None:
    config = parse_config(yaml.safe_dump(CONFIG_BASE), environ={})
    terms = config.contracts[0].terms_at(utc(2026, 7, 1), config.plans)
    assert terms is not None
    assert (terms.window, terms.credit.annual_cap_pct) == ("quarter", Decimal(10))
    yearly = parse_config(yaml.safe_dump(_contract(window="year")), environ={})
    yearly_terms = yearly.contracts[0].terms_at(utc(2026, 7, 1), yearly.plans)
    assert yearly_terms is not None
    assert yearly_terms.window == "year"
    # Without the term there is no annual cap: existing contracts credit as before.
    plain = parse_config(yaml.safe_dump(_contract(credit={"per_step": 15})), environ={})
    plain_terms = plain.contracts[0].terms_at(utc(2026, 7, 1), plain.plans)
    assert plain_terms is not None
    assert plain_terms.credit.annual_cap_pct is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"window": "semester"},
            "contracts[0].window: 'semester' is not allowed; use one of 'week', 'month', "
            "'quarter' or 'year'",
        ),
        (
            {"window": "2026-Q3"},
            "contracts[0].window: '2026-Q3' is not allowed; use one of 'week', 'month', "
            "'quarter' or 'year'",
        ),
        (
            {"credit": {"annual_cap_pct": 150}},
            "contracts[0].credit.annual_cap_pct: 150: input should be less than or equal to 100",
        ),
        (
            {"credit": {"annual_cap_pct": -1}},
            "contracts[0].credit.annual_cap_pct: -1: input should be greater than or equal to 0",
        ),
        (
            {"credit": {"annual_cap_pct": "ten"}},
            "contracts[0].credit.annual_cap_pct: 'ten': input should be a valid decimal",
        ),
        (
            {"credit": {"annual_cap": 10}},
            "contracts[0].credit.annual_cap: unknown key 'annual_cap'; allowed keys here: "
            "step, per_step, rounding, cap, bands, incidents, annual_cap_pct",
        ),
    ],
    ids=["unknown kind", "a label, not a kind", "over 100", "negative", "not a number", "misspelt"],
)
def test_config_mistakes_name_the_path_the_value_and_what_is_allowed(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(yaml.safe_dump(_contract(**changes)), environ={})
    assert [f"{p.path}: {p.message}" for p in refused.value.problems] == [message]


# --- a quarterly contract with an annual cap, as billing meets it ---------------------------

# 2026 in Berlin. An hourly probe; a day down in each of Q1, Q2 and Q3, each 2 steps of
# 15 % of 1,000.00 = 300.00 by the window's own rules, against an annual cap of 10 % of
# 4 x 1,000.00 = 400.00. Q1's second day has no samples at first (unknown, excluded).
YEAR_START = utc(2025, 12, 31, 23)
DATA_END = utc(2026, 9, 30, 22)  # Q3's end: Q4 is running on the test machine's clock
DOWN_DAYS = [utc(2026, 2, 10, 9), utc(2026, 5, 12, 9), utc(2026, 8, 11, 9)]
LATE_DAY = utc(2026, 3, 3, 9)  # the late data: Q1 was down this day too
DAY = timedelta(days=1)


def _hours(start: datetime, end: datetime) -> list[datetime]:
    return [start + timedelta(hours=h) for h in range((end - start) // HOUR)]


def _samples_csv(start: datetime, end: datetime, *, all_down: bool = False) -> str:
    lines = ["time,link,probe,outcome,rtt_ms,loss_pct"]
    for moment in _hours(start, end):
        if not all_down and LATE_DAY <= moment < LATE_DAY + DAY:
            continue
        down = all_down or any(day <= moment < day + DAY for day in DOWN_DAYS)
        lines.append(
            f"{moment.isoformat()},acme-hq,icmp,{'down' if down else 'up'},"
            f"{'' if down else '4.2'},{'100' if down else '0'}"
        )
    return "\n".join(lines) + "\n"


def _quarterly_config(directory: Path) -> str:
    contract = copy.deepcopy(CONFIG_BASE)
    contract["data_dir"] = str(directory)
    contract["users"] = [
        {"name": "betty", "role": "billing", "password_hash": FAST_HASHER.hash("pw-betty-1")}
    ]
    return yaml.safe_dump(contract)


def _report(c: list[str], label: str) -> dict[str, Any]:
    (record,) = json.loads(_cli("report", "sla", *c, "--window", label, "--format", "json"))
    return {k: record[k] for k in ("window", "availability_pct", "credit_pct", "credit_amount",
                                   "credit_before_annual_cap", "annual_cap_amount",
                                   "annual_cap_remaining", "status")}  # fmt: skip


def _cli(*args: str) -> str:
    result = linkwatch(*args, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _ledger(config_path: Path) -> list[dict[str, str]]:
    """Every ledger row, open and closed ones too, as the billing export writes them."""

    async def rows() -> str:
        db = await open_database(load_config(config_path))
        try:
            return export_csv(await list_rows(db))
        finally:
            await db.close()

    found = csv.DictReader(io.StringIO(asyncio.run(rows())))
    wanted = (r for r in found if r["window"] != "2026-Q4")
    return sorted(wanted, key=lambda r: (r["window"], int(r["id"])))


def test_a_quarterly_contract_reaches_its_annual_cap_in_q2_and_the_ledger_agrees(
    pg_base_dir: Path,
) -> None:
    directory = Path(tempfile.mkdtemp(dir=pg_base_dir))
    directory.chmod(0o711)  # the embedded server may run as another user
    config_path = directory / "linkwatch.yaml"
    config_path.write_text(_quarterly_config(directory))
    c = ["--config", str(config_path)]
    history = directory / "2026.csv"
    history.write_text(_samples_csv(YEAR_START, DATA_END))

    # The import computes the quarters' rows, oldest first.
    _cli("import", "samples", *c, str(history))
    q1, q2, q3 = (_report(c, label) for label in ("2026-Q1", "2026-Q2", "2026-Q3"))
    assert q1 == {
        "window": "2026-Q1", "availability_pct": "98.8769", "credit_pct": "30",
        "credit_amount": "300.00", "credit_before_annual_cap": "300.00",
        "annual_cap_amount": "400.00", "annual_cap_remaining": "400.00", "status": "closed",
    }  # fmt: skip
    # The quarter that reaches the cap pays the remainder, the next one nothing.
    assert q2 == {
        "window": "2026-Q2", "availability_pct": "98.9010", "credit_pct": "30",
        "credit_amount": "100.00", "credit_before_annual_cap": "300.00",
        "annual_cap_amount": "400.00", "annual_cap_remaining": "100.00", "status": "closed",
    }  # fmt: skip
    assert q3 == {
        "window": "2026-Q3", "availability_pct": "98.9130", "credit_pct": "30",
        "credit_amount": "0.00", "credit_before_annual_cap": "300.00",
        "annual_cap_amount": "400.00", "annual_cap_remaining": "0.00", "status": "closed",
    }  # fmt: skip
    # What the ledger pays is what the report says, field for field.
    ledger = _ledger(config_path)
    assert [(r["window"], r["kind"], r["amount"]) for r in ledger] == [
        ("2026-Q1", "window", "300.00"),
        ("2026-Q2", "window", "100.00"),
        ("2026-Q3", "window", "0.00"),
    ]
    for row, report in zip(ledger, (q1, q2, q3), strict=True):
        assert {k: row[k] for k in report} == report
    # The customer's monthly report shows a quarter whole in the month it ends in.
    june = text_of(_cli("report", "monthly", *c, "--customer", "acme", "--month", "2026-06"))
    assert "Quarter 2026-Q2" in june
    assert "quarterly" in june
    assert "100.00 EUR" in june
    may = text_of(_cli("report", "monthly", *c, "--customer", "acme", "--month", "2026-05"))
    assert "2026-Q2" not in may
    # Refreshing again changes none of them (only the running Q4 follows the clock).
    refreshed = _cli("credits", "refresh", *c)
    assert "1 recomputed, 0 closed, 3 unchanged, 0 adjustments" in refreshed

    # Billing approves Q1; late data then shows a second day down in it: Q1's credit by
    # its rules doubles, but only 100.00 of the cap is left for it, so its adjustment is
    # +100.00 and Q2, which the cap's remainder paid, now pays nothing.
    q1_id = next(r["id"] for r in ledger if r["window"] == "2026-Q1")
    _cli("credits", "approve", *c, "--id", q1_id, "--user", "betty")
    late = directory / "late.csv"
    late.write_text(_samples_csv(LATE_DAY, LATE_DAY + DAY, all_down=True))
    _cli("import", "samples", *c, str(late))
    after = _ledger(config_path)
    assert [(r["window"], r["kind"], r["status"], r["amount"]) for r in after] == [
        ("2026-Q1", "window", "approved", "300.00"),
        ("2026-Q1", "adjustment", "closed", "100.00"),
        ("2026-Q2", "window", "closed", "0.00"),
        ("2026-Q3", "window", "closed", "0.00"),
    ]
    adjustment = after[1]
    assert (adjustment["credit_amount"], adjustment["credit_before_annual_cap"]) == (
        "400.00",
        "600.00",
    )
    assert _report(c, "2026-Q2")["credit_amount"] == "0.00"
    assert _report(c, "2026-Q2")["annual_cap_remaining"] == "0.00"
