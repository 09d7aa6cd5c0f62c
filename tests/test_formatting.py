"""Figures as people read them, one rule per kind for the portal, notifications, the
command line and the reports alike (`kernel.formatting`): durations, availability,
targets, money, whether a target was met."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.formatting import (
    NBSP,
    availability_text,
    duration_text,
    local_span,
    met_text,
    money,
    ratio_availability_text,
    share_text,
    target_text,
)

S = 1_000_000  # µs


def nb(text: str) -> str:
    """`text` with a no-break space between each number and its unit, as rendered."""
    words = text.split(" ")
    return " ".join(
        f"{number}{NBSP}{unit}" for number, unit in zip(words[::2], words[1::2], strict=True)
    )


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        pytest.param(timedelta(seconds=45), "45 s", id="seconds"),
        pytest.param(timedelta(seconds=59, microseconds=999_999), "59 s", id="never-rounded-up"),
        pytest.param(timedelta(minutes=12), "12 min", id="whole-minutes"),
        pytest.param(timedelta(minutes=12, seconds=5), "12 min 5 s", id="min-s"),
        pytest.param(timedelta(hours=3, seconds=5), "3 h", id="third-unit-cut"),
        pytest.param(timedelta(hours=3, minutes=5, seconds=59), "3 h 5 min", id="h-min"),
        pytest.param(timedelta(days=2, hours=4, minutes=59), "2 d 4 h", id="d-h"),
        pytest.param(timedelta(days=2, minutes=3), "2 d", id="zero-second-unit-left-out"),
        pytest.param(timedelta(days=400), "400 d", id="days-are-the-largest-unit"),
        pytest.param(12 * 60 * S + 5 * S + 999, "12 min 5 s", id="micros-int"),
        pytest.param(Fraction(2 * 3600 * S + 1, 3), "40 min", id="micros-fraction"),
    ],
)
def test_two_largest_units_truncated(span: timedelta | int | Fraction, expected: str) -> None:
    assert duration_text(span) == nb(expected)


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        pytest.param(timedelta(0), "none", id="zero"),
        pytest.param(timedelta(microseconds=1), f"under 1{NBSP}s", id="a-microsecond"),
        pytest.param(Fraction(1, 2), f"under 1{NBSP}s", id="half-a-microsecond"),
        pytest.param(timedelta(seconds=1), f"1{NBSP}s", id="one-second"),
    ],
)
def test_below_a_second(span: timedelta | int | Fraction, expected: str) -> None:
    assert duration_text(span) == expected


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        pytest.param(timedelta(0), "under a minute", id="zero"),
        pytest.param(timedelta(seconds=59, microseconds=999_999), "under a minute", id="59.9s"),
        pytest.param(timedelta(minutes=1), f"1{NBSP}min", id="a-minute"),
        pytest.param(timedelta(minutes=12, seconds=59), f"12{NBSP}min", id="seconds-cut"),
        pytest.param(timedelta(hours=3, minutes=5, seconds=1), nb("3 h 5 min"), id="h-min"),
        pytest.param(timedelta(hours=3, seconds=1), f"3{NBSP}h", id="h"),
        pytest.param(timedelta(days=2, hours=4, minutes=1), nb("2 d 4 h"), id="d-h"),
    ],
)
def test_minute_precision_for_ago_and_for_phrases(span: timedelta, expected: str) -> None:
    assert duration_text(span, smallest="min") == expected


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        pytest.param(0, "0 s", id="zero"),
        pytest.param((31 * 86_400 + 3_600) * S, "31 d 1 h", id="a-dst-month"),
        pytest.param(timedelta(hours=3, seconds=5), "3 h 5 s", id="no-unit-cut"),
        pytest.param(
            timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5),
            "1 d 2 h 3 min 4 s 5 µs",
            id="every-unit",
        ),
        pytest.param(250_000, "250000 µs", id="under-a-second"),
        pytest.param(Fraction(7 * S), "7 s", id="whole-fraction"),
    ],
)
def test_exact_shows_every_unit(span: timedelta | int | Fraction, expected: str) -> None:
    assert duration_text(span, exact=True) == nb(expected)


def test_exact_refuses_what_it_cannot_show_exactly() -> None:
    with pytest.raises(ValueError, match="whole number of microseconds"):
        duration_text(Fraction(3, 2), exact=True)
    with pytest.raises(ValueError, match="every unit"):
        duration_text(timedelta(minutes=5), exact=True, smallest="min")


def test_negative_spans_carry_a_minus_sign() -> None:
    assert duration_text(-timedelta(minutes=5, seconds=3)) == "-" + nb("5 min 3 s")
    assert duration_text(-timedelta(hours=3, minutes=5), smallest="min") == "-" + nb("3 h 5 min")
    assert duration_text(-timedelta(seconds=1, microseconds=7), exact=True) == "-" + nb("1 s 7 µs")


def test_a_negative_span_under_the_smallest_unit_reads_like_a_positive_one() -> None:
    assert duration_text(-timedelta(microseconds=1)) == f"under 1{NBSP}s"
    assert duration_text(-timedelta(seconds=30), smallest="min") == "under a minute"


def test_command_line_text_uses_plain_spaces() -> None:
    assert duration_text(timedelta(minutes=5, seconds=56), space=" ") == "5 min 56 s"
    assert duration_text(timedelta(microseconds=5), space=" ") == "under 1 s"


# --- availability, targets, money -------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "decimals", "expected"),
    [
        pytest.param(Decimal("98.0207"), 3, "98.020", id="default-three"),
        pytest.param(Decimal("98.0207"), 2, "98.02", id="contract-two"),
        pytest.param(Decimal("99.49995"), 4, "99.4999", id="never-rounded-up"),
        pytest.param(Decimal("99.9999"), 0, "99", id="no-decimals-still-truncates"),
        pytest.param(Decimal("99.5"), 3, "99.500", id="trailing-zeros-kept-to-line-up"),
        pytest.param(Decimal("100"), 3, "100.000", id="whole"),
        pytest.param(Decimal("0"), 2, "0.00", id="zero"),
        pytest.param(Fraction(2, 3) * 100, 3, "66.666", id="fraction-points"),
    ],
)
def test_availability_is_truncated_to_the_contracts_decimals(
    points: Decimal | Fraction, decimals: int, expected: str
) -> None:
    assert availability_text(points, decimals) == f"{expected}{NBSP}%"


def test_availability_of_nothing_measured_and_of_a_ratio() -> None:
    assert availability_text(None) == "n/a"
    assert ratio_availability_text(None, 2) == "n/a"
    assert ratio_availability_text(Fraction(995, 1000)) == f"99.500{NBSP}%"
    assert ratio_availability_text(Fraction(1, 3), 2, space=" ") == "33.33 %"


def test_availability_decimals_outside_what_is_kept_are_refused() -> None:
    with pytest.raises(ValueError, match="0 to 4"):
        availability_text(Decimal("99"), 5)


@given(
    st.fractions(min_value=0, max_value=100, max_denominator=10**9),
    st.integers(min_value=0, max_value=4),
)
def test_availability_shown_never_exceeds_the_value(points: Fraction, decimals: int) -> None:
    shown = Fraction(Decimal(availability_text(points, decimals).removesuffix(f"{NBSP}%")))
    assert shown <= points < shown + Fraction(1, 10**decimals)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(Decimal("99"), "99", id="whole"),
        pytest.param(Decimal("99.0"), "99", id="no-trailing-zero"),
        pytest.param(Decimal("99.50"), "99.5", id="one-decimal"),
        pytest.param(Decimal("99.95"), "99.95", id="two-decimals"),
        pytest.param(Decimal("100"), "100", id="hundred"),
    ],
)
def test_targets_read_as_the_contract_wrote_them(target: Decimal, expected: str) -> None:
    assert target_text(target) == f"{expected}{NBSP}%"


@pytest.mark.parametrize(
    ("amount", "currency", "signed", "expected"),
    [
        pytest.param(Decimal("4000"), "JPY", False, "4,000 JPY", id="no-minor-unit-grouped"),
        pytest.param(Decimal("1234.5"), "EUR", False, "1,234.50 EUR", id="two-places"),
        pytest.param(Decimal("1234.5678"), "KWD", False, "1,234.568 KWD", id="three-places"),
        pytest.param(Decimal("0.005"), "EUR", False, "0.01 EUR", id="half-up"),
        pytest.param(Decimal("25"), "EUR", True, "+25.00 EUR", id="signed-credit"),
        pytest.param(Decimal("-1250"), "JPY", True, "-1,250 JPY", id="signed-debit"),
        pytest.param(Decimal("0"), "EUR", True, "0.00 EUR", id="signed-zero-no-sign"),
    ],
)
def test_money_in_the_currencys_minor_units_grouped(
    amount: Decimal, currency: str, signed: bool, expected: str
) -> None:
    assert money(amount, currency, signed=signed) == expected.replace(" ", NBSP)
    assert money(amount, currency, signed=signed, space=" ") == expected


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        pytest.param(Decimal("99.5000"), "99.5", id="trimmed"),
        pytest.param(Decimal("100.0000"), "100", id="whole"),
        pytest.param(Decimal("12.3499"), "12.34", id="truncated-to-two"),
        pytest.param(Fraction(1, 3), "0.33", id="fraction"),
        pytest.param(None, None, id="none"),
    ],
)
def test_shares_read_to_two_decimals_trimmed(
    points: Decimal | Fraction | None, expected: str | None
) -> None:
    assert share_text(points) == ("n/a" if expected is None else f"{expected}{NBSP}%")


@pytest.mark.parametrize(
    ("met", "expected"),
    [
        pytest.param(True, "Target met", id="met"),
        pytest.param(False, "Target missed", id="missed"),
        pytest.param(None, "Nothing measured", id="n-a"),
    ],
)
def test_met_reads_as_words(met: bool | None, expected: str) -> None:
    assert met_text(met) == expected


def test_a_span_reads_in_local_time_with_its_zone() -> None:
    start = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    text = local_span(start, start + timedelta(days=31), ZoneInfo("Europe/Berlin"))
    assert text == "2026-12-01 00:00 CET to 2027-01-01 00:00 CET"


def test_dates_on_a_page_are_kept_whole_and_the_rest_escaped() -> None:
    from kernel.formatting import nowrap_dates

    html = str(nowrap_dates("<b> 2026-11-09 00:00 CET to 2026-12-14"))
    assert html == (
        '&lt;b&gt; <span class="date">2026-11-09 00:00 CET</span> to '
        '<span class="date">2026-12-14</span>'
    )
