"""Durations as people read them: one renderer for the portal, notifications, the command
line and the billing report (`kernel.formatting.duration_text`)."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest

from kernel.formatting import NBSP, duration_text

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
