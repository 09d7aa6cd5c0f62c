"""Recurring maintenance for staff: a series read from a form or a JSON body, and each
series as the page and the API show it (its rule, its next occurrences, those announced).

A series from the portal is held to exactly the config's rules (it is validated by
`kernel.config.recurring.RecurringMaintenance`), and its links and customers must be
configured; a refusal is a 400 naming the field and what is allowed. Nothing here checks
who may act: the callers do, with the "maintenance" capability.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from collector.recurring import Announced
from kernel.config import Config
from kernel.config.recurring import RecurringMaintenance
from kernel.formatting import duration_text, local_time
from kernel.recurrence import MaintenanceSeries, occurrence_id
from portal.middleware import PortalError

NEXT_SHOWN = 5  # upcoming occurrences listed per series
FIELDS = (
    "id",
    "description",
    "reference",
    "links",
    "customers",
    "everything",
    "start",
    "timezone",
    "duration",
    "rrule",
    "announce",
)


def _where(loc: Sequence[object]) -> str:
    return ".".join(str(part) for part in loc) or "series"


def series_from(fields: Mapping[str, Any], config: Config, by: str) -> MaintenanceSeries:
    """A series from the caller's fields: `links` and `customers` lists of ids, or
    `everything` true (never by leaving both out: announcing to every customer is said,
    not implied); the rest as in the config's `recurring`."""
    links = list(fields.get("links") or [])
    customers = list(fields.get("customers") or [])
    everything = fields.get("everything") is True
    if everything and (links or customers):
        raise PortalError(400, "everything covers every link; leave links and customers empty")
    if not everything and not links and not customers:
        raise PortalError(
            400, "say what the work covers: links, customers, or everything set to true"
        )
    known_links = {link.id for link in config.links}
    known_customers = {customer.id for customer in config.customers}
    for link_id in links:
        if link_id not in known_links:
            raise PortalError(400, f"links: unknown link {link_id!r}")
    for customer_id in customers:
        if customer_id not in known_customers:
            raise PortalError(400, f"customers: unknown customer {customer_id!r}")
    raw = {k: v for k, v in fields.items() if k not in ("everything",) and v not in (None, "")}
    raw["links"], raw["customers"] = links, customers
    try:
        model = RecurringMaintenance.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first.get("ctx", {}).get("error") or first["msg"])
        raise PortalError(400, f"{_where(first['loc'])}: {message}") from None
    return replace(model.to_series(), created_by=by, source="portal")


@dataclass(frozen=True, slots=True)
class OccurrenceLine:
    id: str
    starts_at: datetime
    ends_at: datetime
    local: str  # its start in the series' zone, as a person reads it
    state: str  # "announced", "announced late", "to be announced", "withdrawn"
    announce_at: datetime  # when it is (or was due to be) announced


@dataclass(frozen=True, slots=True)
class SeriesView:
    series: MaintenanceSeries
    scope: str
    schedule: str
    upcoming: tuple[OccurrenceLine, ...]
    skipped: tuple[datetime, ...]


def series_view(
    series: MaintenanceSeries, announced: Sequence[Announced], now: datetime
) -> SeriesView:
    """The series with its next occurrences, each as announced or still to be."""
    recurrence = series.recurrence()
    by_id = {a.id: a for a in announced}
    lines: list[OccurrenceLine] = []
    after = now - series.duration
    for start in recurrence.between(after, after + timedelta(days=800), skipped=series.skipped):
        if len(lines) >= NEXT_SHOWN:
            break
        window_id = occurrence_id(series.id, start)
        found = by_id.get(window_id)
        if found is None and series.cancelled_at is not None:
            continue
        if found is None:
            state = "to be announced"
        elif found.cancelled_at is not None:
            state = "withdrawn"
        elif found.starts_at - found.announced_at < series.lead:
            state = "announced late"
        else:
            state = "announced"
        lines.append(
            OccurrenceLine(
                id=window_id,
                starts_at=start,
                ends_at=start + series.duration,
                local=f"{start.astimezone(recurrence.tz):%a} {local_time(start, recurrence.tz)}",
                state=state,
                announce_at=start - series.lead if found is None else found.announced_at,
            )
        )
    if series.everything:
        scope = "everything"
    else:
        scope = ", ".join([*series.link_ids, *(f"customer {c}" for c in series.customer_ids)])
    schedule = (
        f"{series.rule} from {series.start:%Y-%m-%d %H:%M} {series.zone}, "
        f"{duration_text(series.duration, exact=True)} each, announced "
        f"{duration_text(series.lead, exact=True)} ahead"
    )
    return SeriesView(series, scope, schedule, tuple(lines), series.skipped)
