"""Time to restore in words: the lines `report sla` prints under its table and the monthly
report shows per outage. Every figure is `sla.restore`'s, only formatted; times are in
the customer's zone. Pure: no I/O.
"""

from __future__ import annotations

from datetime import timedelta, tzinfo

from kernel.formatting import count_of, decimal_text, duration_text, local_time
from sla.compute import WindowResult
from sla.restore import Continuing, Restore, RestoreRule

_UNIT_NAMES = {
    timedelta(days=1): "day",
    timedelta(hours=1): "hour",
    timedelta(minutes=1): "minute",
}


def unit_name(rule: RestoreRule) -> str:
    """What one `credit_per` is called: "hour", or "unit of 30 min"."""
    return _UNIT_NAMES.get(rule.credit_per) or f"unit of {_span(rule.credit_per)}"


def _span(delta: timedelta | int) -> str:
    return duration_text(delta, exact=True, space=" ")


def rule_text(rule: RestoreRule) -> str:
    """The term, for a report's method section."""
    return (
        f"each outage restored within {_span(rule.within)}; every started "
        f"{unit_name(rule)} beyond it earns {decimal_text(rule.credit_pct)} % of the fee, "
        f"at most {decimal_text(rule.cap_pct)} % per window, before the overall cap; timed "
        "from the outage's confirmed start (also before the window's), billed in the "
        "window it ends in, excluded time not counted"
    )


def restore_text(restore: Restore, rule: RestoreRule, zone: tzinfo) -> str:
    """E.g. "outage from 2026-11-17 10:00 CET restored after 5 h 12 min: 2 started hours
    over 4 h, 10 %"."""
    elapsed = (restore.end - restore.start) // timedelta(microseconds=1)
    after = _span(restore.counted_us)
    if elapsed != restore.counted_us:
        after += f" (not counting {_span(elapsed - restore.counted_us)} excluded)"
    name = unit_name(rule)
    plural = name + "s" if name in _UNIT_NAMES.values() else name.replace("unit", "units", 1)
    units = count_of(restore.units, f"started {name}", f"started {plural}")
    return (
        f"outage from {local_time(restore.start, zone)} restored after {after}: "
        f"{units} over {_span(rule.within)}, {decimal_text(restore.pct)} %"
    )


def continuing_text(outage: Continuing, zone: tzinfo) -> str:
    return (
        f"outage from {local_time(outage.start, zone)} still running at the window's end "
        f"({_span(outage.counted_us)} so far): billed in the window it ends in"
    )


def result_lines(result: WindowResult, rule: RestoreRule | None) -> list[str]:
    """Each outage over the limit, then each one still running, for one window."""
    if rule is None:
        return []
    zone = result.window.start.tzinfo
    assert zone is not None
    lines = [restore_text(r, rule, zone) for r in result.restores if r.over]
    lines += [continuing_text(c, zone) for c in result.continuing]
    return lines
