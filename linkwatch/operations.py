"""`linkwatch report operations --month 2026-11`: the monthly operations report (time to
acknowledge and to restore, per contract and overall) as a table or JSON.

Wiring only: the figures are `sla.operations`'.
"""

from __future__ import annotations

import json
from datetime import datetime

from kernel.config import Config
from kernel.formatting import duration_text
from linkwatch.admin import BadArgument, _stored_data
from sla.operations import Figure, OperationsReport, Summary, _Never, month_window


async def operations_report_of(config: Config, month: str, now: datetime) -> OperationsReport:
    from sla.operations import operations_report

    try:
        month_window(month)
    except ValueError as exc:
        raise BadArgument(f"--month {exc}") from None
    async with await _stored_data(config) as db:
        return await operations_report(db, config, month, now)


def _figure(value: Figure | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, _Never):
        return "never"
    return duration_text(value, space=" ")


def _row(s: Summary) -> list[str]:
    objective = "-" if s.objective is None else duration_text(s.objective, space=" ")
    within = f"{s.within_objective}/{s.with_objective}" if s.with_objective else "-"
    return [
        s.name,
        objective,
        str(s.outages),
        str(s.never_acknowledged),
        within,
        _figure(s.tta.median),
        _figure(s.tta.p90),
        _figure(s.tta.worst),
        _figure(s.ttr.median),
        _figure(s.ttr.p90),
        _figure(s.ttr.worst),
    ]


HEADER = [
    "contract",
    "objective",
    "outages",
    "never acked",
    "acked within",
    "TTA median",
    "TTA p90",
    "TTA worst",
    "TTR median",
    "TTR p90",
    "TTR worst",
]


def table(report: OperationsReport) -> str:
    rows = [HEADER, *(_row(s) for s in report.contracts), _row(report.overall)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = [f"Operations report {report.month.label} (outages that began in it, UTC)"]
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    return "\n".join(lines)


def as_json(report: OperationsReport) -> str:
    from portal.api.acknowledgements import report_body

    return json.dumps(report_body(report), indent=2, default=str)
