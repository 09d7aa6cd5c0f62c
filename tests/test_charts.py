"""The portal's SVG charts on their own: gaps where data is missing, escaped text, local
time axes across DST, axis tops, the focusable 90-day bar and the budget meter."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, timedelta
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest

from portal import charts

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 11, 18, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SVG = "{http://www.w3.org/2000/svg}"


def hourly(values: list[float | None]) -> tuple[tuple[datetime, float | None], ...]:
    return tuple((START + i * HOUR, v) for i, v in enumerate(values))


def axis(hours: int = 12, tz: ZoneInfo = BERLIN) -> charts.TimeAxis:
    return charts.TimeAxis(START, START + hours * HOUR, HOUR, tz)


def parse(markup: str) -> ElementTree.Element:
    """The SVG as XML (inline SVG in HTML needs no namespace; the parser does): it must
    be well-formed to render at all."""
    text = str(markup).replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    return ElementTree.fromstring(text)  # noqa: S314 - our own output, not untrusted input


def ms(value: float) -> str:
    return f"{charts.number(value)} ms"


def test_a_line_breaks_where_buckets_have_no_data() -> None:
    series = charts.Series("mean", "a", hourly([10, 12, None, None, 11, 13, 12]))
    svg = parse(charts.line_chart("rtt", "RTT", [series], axis(), fmt=ms))
    lines = svg.findall(f".//{SVG}polyline")
    assert len(lines) == 2
    assert [len(line.get("points", "").split()) for line in lines] == [2, 3]


def test_a_missing_bucket_is_a_gap_too_and_a_lone_bucket_a_dot() -> None:
    points = (
        (START, 5.0),
        (START + HOUR, 6.0),
        (START + 4 * HOUR, 7.0),  # hours 2 and 3 were never stored
    )
    svg = parse(
        charts.line_chart("rtt", "RTT", [charts.Series("mean", "a", points)], axis(), fmt=ms)
    )
    assert len(svg.findall(f".//{SVG}polyline")) == 1
    assert len(svg.findall(f".//{SVG}circle")) == 1


def test_points_sit_at_their_bucket_and_scale_to_a_nice_top() -> None:
    series = charts.Series("mean", "a", hourly([0, 40]))
    svg = charts.line_chart("rtt", "RTT", [series], axis(hours=2), fmt=ms)
    labels = re.findall(r'class="ylabel"[^>]*>([^<]+)<', svg)
    assert labels == ["0 ms", "12.5 ms", "25 ms", "37.5 ms", "50 ms"]
    (points,) = re.findall(r'<polyline class="line" points="([^"]+)"', svg)
    (x0, y0), (x1, y1) = (tuple(map(float, p.split(","))) for p in points.split())
    left = float(re.findall(r'<line x1="([\d.]+)"', svg)[0])  # the plot starts at its grid
    plot_w = charts.WIDTH - left - charts.RIGHT
    assert x0 == pytest.approx(left + plot_w * 0.25, abs=0.1)  # middle of hour 1 of 2
    assert x1 == pytest.approx(left + plot_w * 0.75, abs=0.1)
    bottom = charts.HEIGHT - charts.BOTTOM
    assert y0 == pytest.approx(bottom)
    assert y1 == pytest.approx(bottom - (bottom - charts.TOP) * 0.8, abs=0.1)  # 40 of 50


@pytest.mark.parametrize(
    ("value", "top"),
    [(0.0, 1.0), (0.3, 0.5), (1.0, 1.0), (1.01, 2.0), (2.2, 2.5), (7.0, 10.0), (180.0, 200.0)],
)
def test_nice_ceiling(value: float, top: float) -> None:
    assert charts.nice_ceiling(value) == pytest.approx(top)


def test_no_data_says_so() -> None:
    svg = charts.line_chart("rtt", "RTT", [charts.Series("mean", "a", ())], axis(), fmt=ms)
    assert "No measurements in this range" in svg
    assert "<polyline" not in svg


def test_text_is_escaped() -> None:
    series = charts.Series("<b>p95</b>", 'a" onload="x', hourly([1.0, 2.0]))
    svg = charts.line_chart('x"y', "<script>alert(1)</script>", [series], axis(), fmt=ms)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "<b>" not in svg
    assert 'onload="x' not in svg
    parse(svg)


def test_hover_targets_carry_each_buckets_figures_in_local_time() -> None:
    series = [
        charts.Series("mean", "a", hourly([10.0, 11.0])),
        charts.Series("p95", "b", hourly([15.0, None])),
    ]
    svg = charts.line_chart("rtt", "RTT", series, axis(hours=2), fmt=ms)
    titles = re.findall(r'<rect class="target"[^>]*><title>([^<]+)</title>', svg)
    assert titles == [
        "Wed 18 Nov 01:00–02:00 CET: mean 10 ms, p95 15 ms",
        "Wed 18 Nov 02:00–03:00 CET: mean 11 ms",
    ]


def test_many_buckets_share_hover_targets() -> None:
    values: list[float | None] = [float(i % 7) for i in range(720)]
    chart_axis = charts.TimeAxis(START, START + 720 * HOUR, HOUR, UTC)
    svg = charts.line_chart("rtt", "RTT", [charts.Series("mean", "a", hourly(values))],
                            chart_axis, fmt=ms)  # fmt: skip
    assert svg.count('class="target"') == 180
    assert "mean up to 6 ms" in svg


def _texts(svg: str, cls: str) -> list[tuple[float, str]]:
    return [
        (float(x), text)
        for x, text in re.findall(rf'<text class="{cls}[^"]*" x="([\d.]+)"[^>]*>([^<]+)<', svg)
    ]


@pytest.mark.parametrize("font", [charts.FONT_WIDE, charts.FONT_NARROW])
def test_axis_labels_fit_their_chart_and_keep_clear_of_each_other(font: int) -> None:
    # A phone's larger text once clipped "200 ms" to "00 ms", and ran "0 %" (right-aligned
    # at the plot's left edge) into the first day's label, centred under that same edge.
    week = charts.TimeAxis(START - timedelta(days=7), START, HOUR, BERLIN)
    series = charts.Series("mean", "a", tuple((START - i * HOUR, 180.0) for i in range(1, 168)))
    svg = str(charts.line_chart("rtt", "RTT", [series], week, fmt=ms))
    left = float(re.findall(r'<line x1="([\d.]+)"', svg)[0])
    ylabels = _texts(svg, "ylabel")
    assert [text for _, text in ylabels][-1] == "200 ms"
    for x, text in ylabels:  # right-aligned at x
        assert x - charts.text_width(text, font) >= 0, text
        assert x < left
    size = "wide" if font == charts.FONT_WIDE else "narrow"
    xlabels = _texts(svg, f"xlabel xlabel-{size}")
    assert len(xlabels) >= 3
    spans = [
        (x - charts.text_width(t, font) / 2, x + charts.text_width(t, font) / 2) for x, t in xlabels
    ]
    assert spans[0][0] >= left - 0.1  # right of the y axis and its "0 ms"
    assert spans[-1][1] <= charts.WIDTH + 0.1  # coordinates are written to 0.1
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))
    # At the smaller size every day keeps its label; at the larger one some make room.
    assert len(_texts(svg, "xlabel xlabel-wide")) >= len(_texts(svg, "xlabel xlabel-narrow"))


def test_ticks_follow_local_midnight_across_dst() -> None:
    # Berlin leaves summer time on 25 October 2026: that day's midnight is 22:00 UTC the
    # evening before, the next one 23:00 UTC.
    start = datetime(2026, 10, 23, 12, tzinfo=UTC)
    ticks = charts.time_ticks(start, start + timedelta(days=4), BERLIN)
    assert [(at, label) for at, label in ticks] == [
        (datetime(2026, 10, 23, 22, tzinfo=UTC), "Sat 24"),
        (datetime(2026, 10, 24, 22, tzinfo=UTC), "Sun 25"),
        (datetime(2026, 10, 25, 23, tzinfo=UTC), "Mon 26"),
        (datetime(2026, 10, 26, 23, tzinfo=UTC), "Tue 27"),
    ]


def test_a_days_ticks_are_every_three_local_hours() -> None:
    ticks = charts.time_ticks(START, START + timedelta(hours=24), BERLIN)
    assert [label for _, label in ticks] == [
        "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00", "Thu 19",
    ]  # fmt: skip
    kolkata = charts.time_ticks(START, START + timedelta(hours=6), ZoneInfo("Asia/Kolkata"))
    assert [label for _, label in kolkata] == ["06:00", "09:00"]  # a half-hour offset zone


def test_longer_ranges_tick_on_mondays_and_mid_month() -> None:
    month = charts.time_ticks(START - timedelta(days=30), START, UTC)
    assert {at.weekday() for at, _ in month} == {0}
    quarter = charts.time_ticks(START - timedelta(days=90), START, UTC)
    assert [label for _, label in quarter] == [
        "01 Sep", "16 Sep", "01 Oct", "16 Oct", "01 Nov", "16 Nov",
    ]  # fmt: skip


def cells(count: int) -> list[charts.DayCell]:
    return [
        charts.DayCell(
            date(2026, 11, 1) + timedelta(days=i),
            "major" if i == 2 else "up",
            f"day {i} <ok>",
            (f"day {i}", "down none"),
        )
        for i in range(count)
    ]


def test_the_day_bar_has_one_focusable_cell_per_day_with_its_figures() -> None:
    svg = charts.day_bar("days", cells(90), columns=90, hint="Hover or tap a day")
    root = parse(svg)
    days = root.findall(f"{SVG}g")
    assert len(days) == 90
    assert all(g.get("tabindex") == "0" for g in days)
    assert days[2].get("class") == "day day-major"
    title = days[2].find(f"{SVG}title")
    assert title is not None
    assert title.text == "day 2 <ok>"  # escaped in the markup, plain once parsed
    assert "&lt;ok&gt;" in svg
    texts = [t.text for t in days[2].iter(f"{SVG}text")]
    assert texts == ["day 2", "down none"]


def test_the_narrow_day_bar_wraps_into_rows() -> None:
    svg = charts.day_bar("days", cells(90), columns=30, hint="hint")
    ys = {
        int(y)
        for y in re.findall(
            r'<g class="day[^"]*" tabindex="0"><title>[^<]*</title><rect x="\d+" y="(\d+)"', svg
        )
    }
    assert ys == {0, charts.ROW_H, 2 * charts.ROW_H}
    assert 'viewBox="0 0 298 ' in svg


def test_the_meter_fills_to_the_share_used_and_caps_at_full() -> None:
    assert 'class="meter-fill" x="0" y="0" width="50"' in charts.meter(0.25, tone="up", label="x")
    assert 'width="200" height="8" rx="4"/></svg>' in charts.meter(3.0, tone="down", label="x")
    assert 'class="meter-fill" x="0" y="0" width="0"' in charts.meter(None, tone="up", label="x")
