"""How outage time attributed to the customer is shown: on the link page (beside the
outage, with why, who, when, and what each of the link's contracts does with such time),
in the NOC's forms, and in the billing desk's audit trail.

Pure: the caller reads the attributions (of links the viewer may see) and passes them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from collector.attributions import Attribution
from collector.state_reads import Incident
from kernel.config import Config, Contract
from kernel.formatting import duration_text
from portal.formatting import Moment, moment


@dataclass(frozen=True, slots=True)
class AttributionView:
    id: int
    link_id: str
    start: Moment
    end: Moment
    duration: str
    reason: str
    by: str
    at: Moment
    withdrawn_by: str | None
    withdrawn_at: Moment | None
    withdrawn_reason: str | None
    policies: tuple[str, ...]  # what each contract does with the time, in force only

    @property
    def in_force(self) -> bool:
        return self.withdrawn_at is None


def policies(contracts: Iterable[Contract], config: Config, at: datetime) -> tuple[str, ...]:
    """Per contract of the link: whether attributed time is excluded or counts."""
    out = []
    for contract in contracts:
        terms = contract.terms_at(at, config.plans)
        if terms is None:
            continue
        if terms.customer_caused == "exclude":
            out.append(f"excluded from availability under {contract.id}")
        else:
            out.append(f"counted as downtime under {contract.id}")
    return tuple(out)


def attribution_view(
    found: Attribution, now: datetime, tz: tzinfo, policy: Sequence[str] = ()
) -> AttributionView:
    start, end, made = (
        moment(t, now, tz) for t in (found.starts_at, found.ends_at, found.created_at)
    )
    assert start is not None
    assert end is not None
    assert made is not None
    return AttributionView(
        id=found.id,
        link_id=found.link_id,
        start=start,
        end=end,
        duration=duration_text(found.ends_at - found.starts_at),
        reason=found.reason,
        by=found.created_by,
        at=made,
        withdrawn_by=found.withdrawn_by,
        withdrawn_at=moment(found.withdrawn_at, now, tz),
        withdrawn_reason=found.withdrawn_reason,
        policies=tuple(policy) if found.in_force else (),
    )


def of_incident(incident: Incident, found: Iterable[Attribution]) -> list[Attribution]:
    """The attributions made on `incident` (by its start), oldest first."""
    return sorted(
        (
            a
            for a in found
            if a.link_id == incident.link_id and a.outage_start == incident.starts_at
        ),
        key=lambda a: (a.starts_at, a.id),
    )


@dataclass(frozen=True, slots=True)
class TrailLine:
    """One event of an attribution for the audit trail: made, or withdrawn."""

    at: Moment
    actor: str
    action: str  # "attributed" or "withdrawn"
    attribution: AttributionView
    detail: str


def trail_lines(found: Iterable[Attribution], now: datetime, tz: tzinfo) -> list[TrailLine]:
    """Each attribution's events, newest first."""
    events: list[tuple[datetime, int, TrailLine]] = []
    for item in found:
        view = attribution_view(item, now, tz)
        made = moment(item.created_at, now, tz)
        assert made is not None
        span = f"{view.start.local} to {view.end.local} ({view.duration}) of {item.link_id}"
        events.append(
            (item.created_at, item.id,
             TrailLine(made, item.created_by, "attributed", view, f"{span}: {item.reason}"))
        )  # fmt: skip
        if item.withdrawn_at is not None and view.withdrawn_at is not None:
            events.append(
                (item.withdrawn_at, item.id,
                 TrailLine(view.withdrawn_at, item.withdrawn_by or "", "withdrawn", view,
                           f"{span}: {item.withdrawn_reason}"))
            )  # fmt: skip
    events.sort(key=lambda e: (e[0], e[1]), reverse=True)
    return [line for _, _, line in events]
