"""Recurring maintenance: an RFC 5545 RRULE read in a named time zone, and its
occurrences as instants.

A rule is read once (`Recurrence.parse`, which says what is wrong with a bad one) by
python-dateutil's `rrule`; this module adds what a maintenance calendar needs around it:
the start's wall time kept across DST changes ("first Tuesday 02:00" stays 02:00 local),
a wall time the clock skips (spring forward) taken as the gap's end, a repeated one
(autumn) as its first occurrence, as covered hours do; skipped dates (EXDATE); and every
expansion bounded by the instants asked for, so that a rule with no occurrence (the 30th
of February) never runs through the calendar to year 9999.

Pure: no I/O, no clock. Occurrences are UTC instants.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from kernel.domain import MaintenanceWindow
from kernel.formatting import excerpt

MAX_RULE_CHARS = 500
# Maintenance recurs at most daily: finer rules would announce work every hour.
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
# How far after its start a rule must have an occurrence to be a schedule at all.
FIRST_WITHIN = timedelta(days=4 * 366)
# Occurrences checked for overlap with the next one.
OVERLAP_CHECKED = 400
_PART = re.compile(r"^([A-Z]+)=([A-Z0-9,+\-]+)$")
EXAMPLE = "FREQ=MONTHLY;BYDAY=1TU (the first Tuesday of every month)"


class RecurrenceError(ValueError):
    """A rule that cannot be a maintenance schedule, with what is allowed."""


def _gap_end(wall: datetime, tz: ZoneInfo) -> datetime:
    """Where a wall time in a gap is taken: the first instant after the gap."""
    probe = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    # The reading of `probe` is past the gap; step back to the transition.
    step = timedelta(minutes=1)
    while (probe - step).astimezone(tz).replace(tzinfo=None) > wall:
        probe -= step
    return probe


def local_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """`wall` (naive, local to `tz`) as a UTC instant: the first instant the clock reads
    it, so a time in a spring-forward gap is the gap's end and a repeated autumn time
    its first occurrence."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    return _gap_end(wall, tz)


def _split(text: str) -> dict[str, str]:
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if not body:
        raise RecurrenceError(f"an empty rule is no schedule; write one such as {EXAMPLE}")
    parts: dict[str, str] = {}
    for part in body.split(";"):
        found = _PART.fullmatch(part.strip().upper())
        if found is None:
            raise RecurrenceError(
                f"{excerpt(part)} is not NAME=VALUE; write the rule as RFC 5545 parts "
                f"joined by ';', such as {EXAMPLE}"
            )
        name, value = found.groups()
        if name in parts:
            raise RecurrenceError(f"{name} is given twice; give each part once")
        parts[name] = value
    return parts


@dataclass(frozen=True)
class Recurrence:
    """A rule from a local start: `start` is naive, the wall time in `zone` of the first
    day the rule runs from and the time of day of every occurrence."""

    rule: str  # as written (RFC 5545, without DTSTART)
    start: datetime  # naive, local to zone
    zone: str
    _rrule: rrule = field(repr=False, compare=False)

    @classmethod
    def parse(cls, rule: str, start: datetime, zone: str) -> Recurrence:
        if len(rule) > MAX_RULE_CHARS:
            raise RecurrenceError(
                f"the rule has {len(rule)} characters; at most {MAX_RULE_CHARS} are allowed"
            )
        if "\n" in rule or "\r" in rule:
            raise RecurrenceError(
                "write the rule on one line, without DTSTART: the start is its own setting"
            )
        if start.tzinfo is not None:
            raise RecurrenceError(
                f"the start {start.isoformat()} has a UTC offset; give the local wall time "
                "without one (the time zone says where), e.g. 2027-01-05T02:00"
            )
        parts = _split(rule)
        freq = parts.get("FREQ")
        if freq is None:
            raise RecurrenceError(f"the rule has no FREQ; write one such as {EXAMPLE}")
        if freq not in FREQUENCIES:
            raise RecurrenceError(
                f"FREQ={excerpt(freq)} is not allowed; maintenance recurs "
                f"{', '.join(FREQUENCIES[:-1])} or {FREQUENCIES[-1]}"
            )
        if "COUNT" in parts and "UNTIL" in parts:
            raise RecurrenceError("COUNT and UNTIL are given together; RFC 5545 allows one")
        if "UNTIL" in parts and not parts["UNTIL"].endswith("Z"):
            raise RecurrenceError(
                f"UNTIL={excerpt(parts['UNTIL'])} has no Z; RFC 5545 writes it in UTC when "
                "the start has a time zone, e.g. UNTIL=20271231T235959Z"
            )
        if parts.get("COUNT") == "0":
            raise RecurrenceError("COUNT=0 has no occurrence; use 1 or more")
        tz = ZoneInfo(zone)
        try:
            parsed = rrulestr(
                ";".join(f"{k}={v}" for k, v in parts.items()), dtstart=start.replace(tzinfo=tz)
            )
        except (ValueError, TypeError, OverflowError, IndexError, KeyError) as exc:
            raise RecurrenceError(
                f"{excerpt(rule)} is not an RFC 5545 RRULE ({exc}); write one such as {EXAMPLE}"
            ) from None
        assert isinstance(parsed, rrule)
        made = cls(rule, start, zone, parsed)
        begin = made.first_instant()
        if not made.between(begin, begin + FIRST_WITHIN):
            raise RecurrenceError(
                f"{excerpt(rule)} has no occurrence in the {FIRST_WITHIN.days // 366} years "
                "from the start; check its BY... parts and UNTIL"
            )
        return made

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def first_instant(self) -> datetime:
        return local_instant(self.start, self.tz)

    def at_wall(self, wall: datetime) -> datetime:
        """A naive local time of this rule's zone as a UTC instant."""
        return local_instant(wall, self.tz)

    def _walls(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """The rule's wall times whose instants may lie in [start, end): searched a day
        either side in local time, which covers any offset."""
        tz = self.tz
        low = start.astimezone(tz).replace(tzinfo=None) - timedelta(days=1)
        high = end.astimezone(tz).replace(tzinfo=None) + timedelta(days=1)
        # Every datetime the rule yields carries `tz`: compared with bounds of the same
        # tzinfo, Python compares wall times, which is what the bounds are.
        for found in self._rrule.between(low.replace(tzinfo=tz), high.replace(tzinfo=tz), True):
            yield found.replace(tzinfo=None)

    def between(
        self, start: datetime, end: datetime, *, skipped: Collection[datetime] = ()
    ) -> list[datetime]:
        """Occurrence starts (UTC) in [start, end), without the `skipped` ones (UTC)."""
        if end <= start:
            return []
        found = {local_instant(wall, self.tz) for wall in self._walls(start, end)}
        gone = {s.astimezone(UTC) for s in skipped}
        return sorted(i for i in found if start <= i < end and i not in gone)

    def is_occurrence(self, instant: datetime) -> bool:
        at = instant.astimezone(UTC)
        return at in self.between(at, at + timedelta(microseconds=1))

    def overlap(self, duration: timedelta) -> tuple[datetime, datetime] | None:
        """The first two occurrences (of the first few hundred) closer together than
        `duration`, or None: a schedule's windows must not overlap."""
        begin = self.first_instant()
        previous: datetime | None = None
        for seen, wall in enumerate(self._rrule, start=1):  # bounded by OVERLAP_CHECKED
            instant = local_instant(wall.replace(tzinfo=None), self.tz)
            if previous is not None and instant - previous < duration:
                return previous, instant
            previous = instant
            if seen >= OVERLAP_CHECKED or instant - begin > FIRST_WITHIN * 10:
                return None
        return None


def occurrence_id(series_id: str, start: datetime) -> str:
    """The stable id of one occurrence's maintenance window: `<series>@<start, UTC>`."""
    return f"{series_id}@{start.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True, slots=True)
class MaintenanceSeries:
    """A recurring maintenance window as stored: what each occurrence covers, its rule,
    how long before its start it is announced, and the occurrences not held."""

    id: str
    description: str
    reference: str
    link_ids: tuple[str, ...]
    customer_ids: tuple[str, ...]
    start: datetime  # naive, local to zone
    zone: str
    duration: timedelta
    rule: str
    lead: timedelta
    skipped: tuple[datetime, ...] = ()  # occurrence starts (UTC)
    cancelled_at: datetime | None = None  # no occurrence announced from then on
    source: str = "config"
    created_by: str = ""

    @property
    def everything(self) -> bool:
        return not self.link_ids and not self.customer_ids

    def recurrence(self) -> Recurrence:
        return Recurrence.parse(self.rule, self.start, self.zone)

    def occurrences(self, start: datetime, end: datetime) -> list[datetime]:
        """Occurrence starts (UTC) in [start, end), skipped ones left out."""
        return self.recurrence().between(start, end, skipped=self.skipped)

    def due(self, now: datetime) -> list[datetime]:
        """The occurrences to have been announced by `now`: those whose announcement time
        (start - lead) has come and that have not ended. One that ended unannounced (the
        daemon was down all along) is past news and not announced at all."""
        if self.cancelled_at is not None and self.cancelled_at <= now:
            return []
        return self.occurrences(
            now - self.duration + timedelta(microseconds=1),
            now + self.lead + timedelta(microseconds=1),
        )

    def window(self, start: datetime, announced_at: datetime) -> MaintenanceWindow:
        """The maintenance window of the occurrence at `start`, announced at `announced_at`."""
        described = f"{self.description} [{self.reference}]" if self.reference else self.description
        return MaintenanceWindow(
            id=occurrence_id(self.id, start),
            starts_at=start.astimezone(UTC),
            ends_at=start.astimezone(UTC) + self.duration,
            announced_at=announced_at,
            description=described,
            link_ids=self.link_ids,
            customer_ids=self.customer_ids,
        )
