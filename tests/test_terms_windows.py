"""Quarter and year windows beside weeks and months, and the annual credit cap.

Windows: each boundary of a quarter and a year in a DST zone and across years (lengths
are real elapsed time), label parsing and what it refuses, a `window: quarter` config.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla.windows import label_kind, parse_window, window_containing

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
    with pytest.raises(ValueError) as refused:
        parse_window(label, BERLIN)
    assert str(refused.value) == message
