"""The restore deadline of a running outage, for the NOC's outage card.

For a contract with a `restore` term, the outage still running at the window's measured
end (as `compute_window` reports it, excluded time already left out) is timed on to
`now`: green before the term's warning share of `within`, amber after it, red once the
deadline has passed. Display only: it never computes a credit, and never shows more time
left than there is (whole minutes, towards the deadline).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Literal

from kernel.formatting import decimal_text, duration_text, local_time
from sla.report import ContractWindow, restore_clock_at, restore_rule
from sla.restore import warn_at_us

RestoreLevel = Literal["ok", "warning", "critical"]
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class RestoreClock:
    contract_id: str
    subject_id: str
    level: RestoreLevel
    headline: str  # "restore by 14:05 — 1 h 12 min left", "overdue by 12 min"
    detail: str
    left_s: int  # negative once overdue


def restore_clock(
    item: ContractWindow, now: datetime, zone: tzinfo, *, running: bool = True
) -> RestoreClock | None:
    """The deadline of `item`'s running outage, or None when its contract has no restore
    term or its subject has no outage running. `running`: the outage still goes on now
    (its clock runs from the measured end to `now`)."""
    rule = restore_rule(item.terms)
    timing = restore_clock_at(item, now, running=running)
    if rule is None or timing is None:
        return None
    result = item.result
    counted, deadline = timing.counted_us, timing.deadline
    left = rule.within // _US - counted
    by = local_time(deadline, zone)
    detail = (
        f"{result.window.label} · restore within {duration_text(rule.within, smallest='min')}"
        f" · warned at {decimal_text(rule.warn_at_pct)} % · deadline {by}"
    )
    if left < 0:
        over = timedelta(microseconds=-left)
        return RestoreClock(
            item.contract.id,
            item.subject.id,
            "critical",
            f"overdue by {duration_text(over, smallest='min')}",
            detail,
            left // 1_000_000,
        )
    level: RestoreLevel = "warning" if counted >= warn_at_us(rule) else "ok"
    # Whole minutes towards the deadline: never more time left than there is. Under
    # covered hours the deadline lies further off than the clock's time left.
    shown = timedelta(minutes=left // 60_000_000)
    local = deadline.astimezone(zone)
    # A deadline on another day (covered hours stop the clock overnight) names its day.
    same_day = local.date() == now.astimezone(zone).date()
    clock = local.strftime("%H:%M" if same_day else "%a %d %b %H:%M")
    return RestoreClock(
        item.contract.id,
        item.subject.id,
        level,
        f"restore by {clock} — {duration_text(shown, smallest='min')} left",
        detail,
        left // 1_000_000,
    )
