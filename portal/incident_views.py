"""Incidents and their updates as a viewer reads them, and the outages staff pick to
group into one.

Every view is built from an incident already narrowed to the viewer's links
(`visible_report`): a customer reads only the outages and link names of their own
links, and never who among staff posted. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from collector.incident_reports import CAUSE_CATEGORIES, IncidentReport
from collector.state_reads import Incident
from portal.auth import Account
from portal.formatting import Moment, duration_text, moment
from portal.scope import Directory, can

# Closed incidents stay on the customer's home page this long, so the final word is
# there the morning after a night's outage; the link page keeps them with its history.
HOME_AFTER_CLOSE = timedelta(days=3)
HISTORY = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class UpdateView:
    posted: Moment
    by: str | None  # staff only
    body: str
    closes: bool
    links: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutageLine:
    link_id: str
    name: str
    start: Moment
    value: str  # "link|start" as the forms send it
    excluded: str | None = None  # what excluded maintenance took out of it, if any


@dataclass(frozen=True, slots=True)
class IncidentView:
    id: int
    title: str
    open: bool
    opened: Moment
    opened_by: str | None  # staff only
    closed: Moment | None
    cause_label: str | None
    cause: str | None
    outages: tuple[OutageLine, ...]
    updates: tuple[UpdateView, ...]  # newest first

    @property
    def latest(self) -> UpdateView | None:
        return self.updates[0] if self.updates else None


def outage_value(link_id: str, start: datetime) -> str:
    return f"{link_id}|{start.isoformat()}"


def visible_report(
    report: IncidentReport, directory: Directory, user: Account
) -> IncidentReport | None:
    """The incident as `user` may read it, or None when none of its links is theirs."""
    if can(user, "all_customers"):
        return report
    mine = {link.id for link in directory.visible_links(user)}
    if not mine.intersection(report.link_ids):
        return None
    return report.narrowed(mine)


def visible_reports(
    reports: Iterable[IncidentReport], directory: Directory, user: Account
) -> list[IncidentReport]:
    return [r for report in reports if (r := visible_report(report, directory, user)) is not None]


def _link_name(directory: Directory, link_id: str) -> str:
    link = directory.link(link_id)
    if link is None or not link.description:
        return link_id
    return f"{link_id} ({link.description})"


# (link id, outage start) -> `portal.maintenance_views.outage_note` of that outage
Notes = Mapping[tuple[str, datetime], str]


def incident_view(
    report: IncidentReport,
    directory: Directory,
    staff: bool,
    now: datetime,
    tz: tzinfo,
    notes: Notes | None = None,
) -> IncidentView:
    """`report` must be narrowed to the viewer already (`visible_report`); `notes` say
    what excluded maintenance took out of its outages."""
    opened = moment(report.opened_at, now, tz)
    assert opened is not None
    outages = []
    for o in report.outages:
        start = moment(o.outage_start, now, tz)
        assert start is not None
        name = _link_name(directory, o.link_id)
        note = (notes or {}).get((o.link_id, o.outage_start))
        value = outage_value(o.link_id, o.outage_start)
        outages.append(OutageLine(o.link_id, name, start, value, note))
    updates = []
    for u in reversed(report.updates):
        posted = moment(u.posted_at, now, tz)
        assert posted is not None
        by = u.posted_by if staff else None
        updates.append(UpdateView(posted, by, u.body, u.closes, u.link_ids))
    return IncidentView(
        id=report.id,
        title=report.title,
        open=report.is_open,
        opened=opened,
        opened_by=report.opened_by if staff else None,
        closed=moment(report.closed_at, now, tz),
        cause_label=report.cause_label,
        cause=report.cause,
        outages=tuple(outages),
        updates=tuple(updates),
    )


def on_home(reports: Iterable[IncidentReport], now: datetime) -> list[IncidentReport]:
    """What the home page shows: open incidents, and those closed a short while ago."""
    return [r for r in reports if r.closed_at is None or now - r.closed_at <= HOME_AFTER_CLOSE]


def causes_of(outages: Sequence[Incident], reports: Iterable[IncidentReport]) -> list[str | None]:
    """For each outage, the closed incident's cause that explains it ("Incident #4,
    fibre cut: excavator at Main St."), or None."""
    said: Mapping[tuple[str, datetime], str] = {
        (o.link_id, o.outage_start): f"Incident #{r.id}, {r.cause_label}: {r.cause}"
        for r in reports
        if r.closed_at is not None
        for o in r.outages
    }
    return [said.get((i.link_id, i.starts_at)) for i in outages]


@dataclass(frozen=True, slots=True)
class PickableOutage:
    """An outage staff may group: running or recent, with the incident holding it."""

    line: OutageLine
    customer: str
    end: Moment | None
    duration: str
    incident_id: int | None


def pickable(
    found: Sequence[Incident],
    reports: Iterable[IncidentReport],
    directory: Directory,
    now: datetime,
    tz: tzinfo,
    notes: Notes | None = None,
) -> list[PickableOutage]:
    """Running outages first, then the newest; `notes` as for `incident_view`."""
    holder = {(o.link_id, o.outage_start): r.id for r in reports for o in r.outages}
    out = []
    for i in sorted(found, key=lambda i: (i.ends_at is not None, -i.starts_at.timestamp())):
        start = moment(i.starts_at, now, tz)
        assert start is not None
        link = directory.link(i.link_id)
        customer = directory.customer_name(link.customer) if link is not None else "?"
        lasted = (i.ends_at or now) - i.starts_at
        out.append(
            PickableOutage(
                OutageLine(
                    i.link_id,
                    _link_name(directory, i.link_id),
                    start,
                    outage_value(i.link_id, i.starts_at),
                    (notes or {}).get((i.link_id, i.starts_at)),
                ),
                customer,
                moment(i.ends_at, now, tz),
                duration_text(lasted) + ("" if i.ends_at else " so far"),
                holder.get((i.link_id, i.starts_at)),
            )
        )
    return out


CAUSES: tuple[tuple[str, str], ...] = tuple(CAUSE_CATEGORIES.items())
