"""The SLA report's record: the fields billing systems rely on, and their renderings.

Field names and formats are an interface (JSON for machines, CSV for spreadsheets, a
table for people): change them only by adding. Percentages are decimal strings truncated
to four places, money is a decimal string in the currency's minor units, times are
ISO 8601 with the customer's offset. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from kernel.formatting import (
    DEFAULT_AVAILABILITY_DECIMALS,
    availability_text,
    csv_text,
    duration_text,
    met_text,
    money,
    share_text,
    target_text,
    text_table,
)
from sla.compute import WindowResult, seconds, truncate, truncate_pct
from sla.report import ContractWindow, restore_rule
from sla.restore_text import result_lines
from sla.spans import US_PER_S

FIELDS = (
    "contract", "customer", "link", "window", "window_start", "window_end", "window_s",
    "excluded_s", "unknown_s", "down_s", "eligible_s", "coverage_pct", "availability_pct",
    "target_pct", "met", "budget_s", "budget_used_pct", "incidents", "credit_steps",
    "credit_pct", "credit_amount", "currency", "status",
    # Added after the first release: appended, so positional CSV readers keep working.
    "budget_remaining_s", "burn_rate", "budget_warning_pct", "objectives_met",
    "needs_review", "review_reason", "withheld_credit_amount",
    "restore_pct", "restores_over", "restores_continuing",
    "outside_hours_s",
    "customer_caused_s",
    # The annual credit cap (sla/annual_cap.py): credit_amount is what is paid after it.
    "credit_before_annual_cap", "annual_cap_amount", "annual_cap_remaining",
    "quality_down_s", "objectives",
)  # fmt: skip


def window_status(item: ContractWindow, now: datetime) -> str:
    """open while the window runs or late data may still come; closed after its grace."""
    end = item.result.window.end
    return "closed" if now >= end + item.terms.grace else "open"


def record(item: ContractWindow, now: datetime, status: str | None = None) -> dict[str, Any]:
    r = item.result
    return {
        "contract": item.contract.id,
        "customer": item.customer_id,
        "link": item.subject.id,
        "window": r.window.label,
        "window_start": r.window.start.isoformat(),
        "window_end": r.window.end.isoformat(),
        "window_s": seconds(r.window_us),
        "excluded_s": seconds(r.excluded_us),
        "unknown_s": seconds(r.unknown_us),
        "down_s": seconds(r.down_us),
        "eligible_s": seconds(r.eligible_us),
        "coverage_pct": _pct(truncate_pct(r.coverage)),
        "availability_pct": _pct(truncate_pct(r.availability)),
        "target_pct": _pct(Decimal(item.terms.target)),
        "met": r.met,
        "budget_s": seconds(r.budget_us),
        "budget_used_pct": _pct(truncate_pct(r.budget_used)),
        "incidents": r.incidents,
        "credit_steps": r.credit.steps,
        "credit_pct": _pct(r.credit.total_pct),
        "credit_amount": str(r.credit.amount),
        "currency": r.credit.currency,
        "status": status or window_status(item, now),
        "budget_remaining_s": seconds(r.budget_remaining_us),
        "burn_rate": None if r.burn_rate is None else f"{truncate(r.burn_rate, 2):f}",
        "budget_warning_pct": max(r.warnings) if r.warnings else None,
        "objectives_met": _all_met(
            [o.met for o in r.objectives] + [m.met for m in r.metric_objectives]
        ),
        "needs_review": r.review is not None,
        "review_reason": review_reason(r),
        "withheld_credit_amount": (
            None if r.review is None or r.review.withheld is None else str(r.review.withheld.amount)
        ),
        # Time to restore: its credit (within credit_pct), the outages billed here over
        # the limit, and those still running at the window's end (billed where they end).
        "restore_pct": _pct(r.credit.restore_pct),
        "restores_over": sum(1 for restore in r.restores if restore.over),
        "restores_continuing": len(r.continuing),
        "outside_hours_s": seconds(r.outside_hours_us),
        "customer_caused_s": seconds(r.customer_caused_us),
        **annual_cap_fields(item),
        # None: the contract has no quality term; otherwise part of down_s.
        "quality_down_s": None if item.terms.availability is None else seconds(r.quality_down_us),
        "objectives": objective_records(r),
    }


def objective_records(result: WindowResult) -> list[dict[str, Any]]:
    """Every objective of the window (latency and loss, then those on any metric) with
    its measured value, truncated to four decimals, and whether it was met."""
    out = []
    for o in result.objectives:
        measured = None if o.measured is None else Decimal(str(o.measured))
        out.append(
            _objective(
                o.objective.name,
                o.objective.limit,
                o.objective.unit,
                measured,
                o.met,
                o.credit_pct,
                None,
            )
        )
    for m in result.metric_objectives:
        measured_m = None if m.measured is None else truncate(m.measured, 4)
        out.append(
            _objective(
                m.objective.name,
                m.objective.limit,
                m.objective.unit,
                measured_m,
                m.met,
                m.credit_pct,
                m.samples,
            )
        )
    return out


def _objective(
    name: str,
    limit: Decimal,
    unit: str,
    measured: Decimal | None,
    met: bool | None,
    credit_pct: Decimal,
    samples: int | None,
) -> dict[str, Any]:
    return {
        "name": name,
        "limit": f"{limit.normalize():f}",
        "unit": unit,
        "measured": None if measured is None else f"{measured.normalize():f}",
        "samples": samples,
        "met": met,
        "credit_pct": f"{credit_pct.normalize():f}",
    }


def annual_cap_fields(item: ContractWindow) -> dict[str, str | None]:
    """The window's credit by its own rules, the year's cap and what the earlier windows
    of the year left of it; None for a contract without an annual cap."""
    cap = item.annual_cap
    return {
        "credit_before_annual_cap": None if cap is None else str(cap.before),
        "annual_cap_amount": None if cap is None else str(cap.cap),
        "annual_cap_remaining": None if cap is None else str(cap.remaining),
    }


def restore_lines(item: ContractWindow) -> list[str]:
    """`report sla`'s line per outage over the restore limit (and per outage still
    running at the window's end), as printed under its table."""
    head = f"restore {item.contract.id} {item.subject.id} {item.result.window.label}"
    return [f"{head}: {line}" for line in result_lines(item.result, restore_rule(item.terms))]


def review_reason(result: WindowResult) -> str | None:
    """Why a person must look at the window before its credit is approved, in words."""
    review = result.review
    if review is None:
        return None
    coverage = f"coverage {_pct(truncate_pct(result.coverage))} %"
    limit = f"{review.limit_pct.normalize():f} %"
    if review.withheld is not None:
        rules = review.withheld
        return (
            f"{coverage} is under the contract's min_coverage of {limit}: no credit is "
            f"computed automatically (its rules give {rules.total_pct.normalize():f} %, "
            f"{rules.amount} {rules.currency})"
        )
    return (
        f"{coverage} is under {limit} (ledger.review_coverage_below): check the monitoring "
        "before approving the credit"
    )


def _all_met(results: list[bool | None]) -> bool | None:
    """None when there is no objective (or nothing to measure it on)."""
    known = [met for met in results if met is not None]
    return all(known) if known else None


def _pct(value: Decimal | None) -> str | None:
    """A percentage field of the record: the decimal's every digit, no sign, None when
    there is none. An interface for machines, not a display (see `decimal_pct` for
    that)."""
    return None if value is None else f"{value:f}"


def to_json(records: Sequence[dict[str, Any]]) -> str:
    def default(value: object) -> object:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        raise TypeError(type(value).__name__)

    return json.dumps(list(records), indent=2, default=default)


def to_csv(records: Sequence[dict[str, Any]]) -> str:
    return csv_text(FIELDS, records)


def to_table(
    records: Sequence[dict[str, Any]],
    *,
    schedules: Mapping[str, str] | None = None,
    decimals: Mapping[str, int] | None = None,
) -> str:
    """The records for people, every figure by the shared rules with plain spaces:
    availability to its contract's `decimals` (the default for a contract not named),
    targets as written, other percentages as shares, durations in words, money in the
    currency's minor units. `schedules` (contract -> its covered hours in words) are
    noted under the table for the contracts shown."""
    headers = (
        "contract", "link", "window", "availability", "target", "result", "down",
        "unknown", "excluded", "coverage", "inc.", "credit %", "credit", "status", "review",
    )  # fmt: skip
    rows = [list(headers)]
    for r in records:
        places = (decimals or {}).get(r["contract"], DEFAULT_AVAILABILITY_DECIMALS)
        rows.append(
            [
                r["contract"],
                r["link"],
                r["window"],
                availability_text(_decimal(r["availability_pct"]), places, space=" "),
                target_text(Decimal(r["target_pct"]), space=" "),
                met_text(r["met"]),
                _duration(r["down_s"]),
                _duration(r["unknown_s"]),
                _duration(r["excluded_s"]),
                share_text(_decimal(r["coverage_pct"]), space=" "),
                str(r["incidents"]),
                share_text(_decimal(r["credit_pct"]), space=" "),
                money(Decimal(r["credit_amount"]), r["currency"], space=" "),
                r["status"],
                "REVIEW" if r["needs_review"] else "",
            ]
        )
    # Figures on the right, so that their digits line up.
    lines = [text_table(rows, right={3, 4, 6, 7, 8, 9, 10, 11, 12})]
    # Why each flagged line needs a person, under the table.
    lines += [
        f"review {r['contract']} {r['link']} {r['window']}: {r['review_reason']}"
        for r in records
        if r["needs_review"]
    ]
    shown = dict.fromkeys(r["contract"] for r in records)
    lines += [
        f"hours {contract}: {schedules[contract]} (only these hours are measured; the rest "
        "is excluded like announced maintenance)"
        for contract in shown
        if schedules and contract in schedules
    ]
    lines += quality_lines(records)
    return "\n".join(lines)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _duration(value: object) -> str:
    """A record's seconds (a whole or exact decimal number) as a duration in words."""
    return duration_text(Fraction(str(value)) * US_PER_S, space=" ")


def quality_lines(records: Sequence[dict[str, Any]]) -> list[str]:
    """Under the table: the time unavailable for quality, and each missed objective."""
    lines = []
    for r in records:
        which = f"{r['contract']} {r['link']} {r['window']}"
        if r.get("quality_down_s") is not None:
            spent = duration_text(Fraction(str(r["quality_down_s"])) * US_PER_S, space=" ")
            lines.append(f"{which}: unavailable for quality: {spent}")
        for o in r.get("objectives") or []:
            if o["met"] is False:
                unit = f" {o['unit']}" if o["unit"] else ""
                lines.append(
                    f"{which}: objective missed: {o['name']} {o['measured']}{unit} over the "
                    f"limit {o['limit']}{unit} (credit {o['credit_pct']} %)"
                )
    return lines
