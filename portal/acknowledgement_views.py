"""How acknowledgements and response times are shown: on the NOC's outage cards, on the
link page's outage table for staff, and in the operations report.

Pure: the caller reads what the viewer may see and passes it in.
"""

from __future__ import annotations

from datetime import timedelta

from collector.acknowledgements import Acknowledgement
from collector.state_reads import Incident
from kernel.formatting import duration_text
from sla.operations import Figure, _Never


def acknowledged_text(ack: Acknowledgement) -> str:
    """The line an outage card shows: acknowledged by olga 3 min after it began: ..."""
    after = duration_text(ack.at - ack.outage_start, smallest="min")
    note = f": {ack.note}" if ack.note else ""
    return f"acknowledged by {ack.by} {after} after it began{note}"


def tta_text(ack: Acknowledgement | None, running: bool) -> str:
    if ack is None:
        return "not acknowledged yet" if running else "never acknowledged"
    return duration_text(ack.at - ack.outage_start)


def ttr_text(incident: Incident) -> str:
    duration = incident.duration
    return "running" if duration is None else duration_text(duration)


def figure_text(value: Figure | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, _Never):
        return "never"
    return duration_text(value)


def objective_text(objective: timedelta | None) -> str:
    return "—" if objective is None else duration_text(objective)
