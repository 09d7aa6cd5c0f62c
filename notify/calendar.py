"""Maintenance as iCalendar (RFC 5545) in the BCOP "maintnote" form that providers' and
customers' tools parse: one VEVENT per window, with the X-MAINTNOTE-* properties naming
the provider, the customer's account, the window, each affected link and the impact.

Written here rather than with a calendar library: the form is a dozen properties, and
the two rules that matter (text escaping, folding at 75 octets) are a few lines, so
Linkwatch needs no extra run-time dependency; the tests parse the output back with an
independent parser (the `icalendar` package). The UID is stable per window, so a
calendar replaces its entry when a reschedule (a higher SEQUENCE) or a cancellation
arrives. Pure: nothing here reads the database or decides who may see a window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from kernel.config import Config
from kernel.domain import Event, EventKind, MaintenanceWindow

PRODID = "-//Linkwatch//Maintenance notices//EN"
MEDIA_TYPE = "text/calendar"
DEFAULT_PROVIDER = "linkwatch"

Status = Literal["CONFIRMED", "IN-PROCESS", "COMPLETED", "CANCELLED"]


def provider_of(config: Config) -> str:
    """Who announces the work: the portal's host name when one is configured."""
    url = config.notifications.portal_url
    host = urlsplit(url).hostname if url else None
    return host or DEFAULT_PROVIDER


@dataclass(frozen=True, slots=True)
class Notice:
    """One window as one audience (a customer's account, or operations) reads it."""

    window: MaintenanceWindow
    account: str
    object_ids: Sequence[str]  # the links it affects that the audience may see
    status: Status
    stamp: datetime  # when this version of the notice was made
    description: str = ""  # free text: what it means for the reader's SLA, ...


def status_of(window: MaintenanceWindow, now: datetime) -> Status:
    if window.withdrawn:
        return "CANCELLED"
    if window.covers_until <= now:
        return "COMPLETED"
    if window.starts_at <= now:
        return "IN-PROCESS"
    return "CONFIRMED"


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _fold(line: str) -> list[str]:
    """RFC 5545 3.1: lines of at most 75 octets, continued after CRLF and a space,
    never splitting a UTF-8 character."""
    out: list[str] = []
    current, size, limit = "", 0, 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            out.append(current)
            current, size, limit = " ", 1, 75
        current += char
        size += width
    out.append(current)
    return out


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def vevent(notice: Notice, provider: str) -> list[str]:
    window = notice.window
    cancelled = notice.status == "CANCELLED"
    # A cancellation replaces the announcement in calendars only with a higher sequence.
    sequence = window.sequence + (1 if window.cancelled_at is not None else 0)
    # Work stopped early ended when it was stopped; withdrawn work keeps its planned times.
    end = window.ends_at if cancelled else window.covers_until
    summary = f"Maintenance: {window.description or window.id}"
    if window.reference:
        summary += f" ({window.reference})"
    lines = [
        "BEGIN:VEVENT",
        f"UID:{_escape(window.id)}@{_escape(provider)}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{_time(notice.stamp)}",
        f"DTSTART:{_time(window.starts_at)}",
        f"DTEND:{_time(end)}",
        f"SUMMARY:{_escape(summary)}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        "TRANSP:TRANSPARENT",
        f"X-MAINTNOTE-PROVIDER:{_escape(provider)}",
        f"X-MAINTNOTE-ACCOUNT:{_escape(notice.account)}",
        f"X-MAINTNOTE-MAINTENANCE-ID:{_escape(window.id)}",
        *(f"X-MAINTNOTE-OBJECT-ID:{_escape(i)}" for i in notice.object_ids),
        f"X-MAINTNOTE-IMPACT:{window.impact}",
        f"X-MAINTNOTE-STATUS:{notice.status}",
    ]
    if notice.description:
        lines.append(f"DESCRIPTION:{_escape(notice.description)}")
    lines.append("END:VEVENT")
    return lines


def calendar(notices: Iterable[Notice], provider: str, *, name: str | None = None) -> str:
    """A VCALENDAR (METHOD:PUBLISH) of the notices, CRLF-terminated as RFC 5545 says."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "METHOD:PUBLISH"]
    if name is not None:
        lines.append(f"X-WR-CALNAME:{_escape(name)}")
    for notice in notices:
        lines += vevent(notice, provider)
    lines.append("END:VCALENDAR")
    return "".join(f"{part}\r\n" for line in lines for part in _fold(line))


_STATUS_OF_KIND: dict[EventKind, Status] = {
    EventKind.MAINTENANCE_ANNOUNCED: "CONFIRMED",
    EventKind.MAINTENANCE_STARTED: "IN-PROCESS",
    EventKind.MAINTENANCE_FINISHED: "COMPLETED",
    EventKind.MAINTENANCE_CANCELLED: "CANCELLED",
}


def event_calendar(event: Event, config: Config, description: str) -> str | None:
    """The iCalendar a maintenance notification carries (None for other events): the
    window as the event's payload states it, for the event's audience."""
    status = _STATUS_OF_KIND.get(event.kind)
    if status is None:
        return None
    data = event.payload
    cancelled = data.get("cancelled_at")
    window = MaintenanceWindow(
        id=str(data["maintenance_id"]),
        starts_at=datetime.fromisoformat(str(data["starts_at"])),
        ends_at=datetime.fromisoformat(str(data["ends_at"])),
        announced_at=datetime.fromisoformat(str(data["announced_at"])),
        description=str(data.get("description") or ""),
        cancelled_at=None if cancelled is None else datetime.fromisoformat(str(cancelled)),
        reference=str(data.get("reference") or ""),
        impact=str(data.get("impact") or "OUTAGE"),
        sequence=int(str(data.get("sequence") or 0)),
    )
    if status == "CANCELLED" and not window.withdrawn:
        status = "COMPLETED"  # stopped early: the work is over, not called off
    links = data.get("link_ids")
    notice = Notice(
        window=window,
        account=event.customer_id or "operations",
        object_ids=[str(i) for i in links] if isinstance(links, list) else [],
        status=status,
        stamp=event.occurred_at,
        description=description,
    )
    return calendar([notice], provider_of(config))
