"""Recurring maintenance declared in the config (`recurring`, beside `maintenance`): a
series of windows on an RFC 5545 RRULE from a local start in a named time zone, each
occurrence announced `announce` before it begins.

Validated strictly like every section: a rule that is not RFC 5545 or that never occurs,
a zone that does not exist, a duration of zero, occurrences that overlap, a skipped date
that is no occurrence. Any lead time is allowed; `notice_warnings` says where it is
shorter than the maintenance notice of a contract the series covers (check-config prints
it), since such occurrences then count as normal time. Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field

from kernel.config.fields import (
    Duration,
    DurationOrZero,
    Id,
    TimeZoneName,
    _rule,
    _Strict,
)
from kernel.durations import format_duration
from kernel.recurrence import MaintenanceSeries, Recurrence, RecurrenceError

if TYPE_CHECKING:
    from kernel.config.sections import Config

DEFAULT_LEAD = timedelta(days=14)
MAX_LEAD = timedelta(days=366)
MAX_DURATION = timedelta(days=31)


def _local(value: datetime) -> datetime:
    if value.tzinfo is not None:
        raise ValueError(
            f"{value.isoformat()} has a UTC offset; write the local wall time without one "
            f"(timezone says where), e.g. {value.replace(tzinfo=None).isoformat()}"
        )
    return value


LocalDatetime = Annotated[datetime, AfterValidator(_local)]


def _lead(value: timedelta) -> timedelta:
    if value > MAX_LEAD:
        raise ValueError(f"{format_duration(value)} is more than {format_duration(MAX_LEAD)}")
    return value


def _length(value: timedelta) -> timedelta:
    if value > MAX_DURATION:
        raise ValueError(
            f"{format_duration(value)} is longer than {format_duration(MAX_DURATION)}; "
            "a longer piece of work is not a recurring window"
        )
    return value


class RecurringMaintenance(_Strict):
    """A series of maintenance windows; empty links and customers means everything."""

    id: Id
    description: str = ""
    reference: str = Field(default="", max_length=200)  # a change ticket: CHG-1234
    links: list[Id] = Field(default_factory=list)
    customers: list[Id] = Field(default_factory=list)
    start: LocalDatetime  # the first day the rule runs from, and every occurrence's time
    timezone: TimeZoneName = "UTC"
    duration: Annotated[Duration, AfterValidator(_length)]
    rrule: str = Field(min_length=1, max_length=500)
    announce: Annotated[DurationOrZero, AfterValidator(_lead)] = DEFAULT_LEAD
    skip: list[LocalDatetime] = Field(default_factory=list)  # occurrences (local) not held

    def recurrence(self) -> Recurrence:
        return Recurrence.parse(self.rrule, self.start, self.timezone)

    def to_series(self) -> MaintenanceSeries:
        recurrence = self.recurrence()
        return MaintenanceSeries(
            id=self.id,
            description=self.description,
            reference=self.reference,
            link_ids=tuple(self.links),
            customer_ids=tuple(self.customers),
            start=self.start,
            zone=self.timezone,
            duration=self.duration,
            rule=self.rrule,
            lead=self.announce,
            skipped=tuple(recurrence.at_wall(wall) for wall in self.skip),
        )

    @_rule
    def _schedule(self) -> None:
        try:
            recurrence = self.recurrence()
        except RecurrenceError as exc:
            raise ValueError(f"rrule: {exc}") from None
        clash = recurrence.overlap(self.duration)
        if clash is not None:
            raise ValueError(
                f"duration {format_duration(self.duration)} is longer than the "
                f"{format_duration(clash[1] - clash[0])} from the occurrence at "
                f"{clash[0].isoformat()} to the next: occurrences would overlap; shorten "
                "it or space the rule out"
            )
        for wall in self.skip:
            if not recurrence.is_occurrence(recurrence.at_wall(wall)):
                raise ValueError(
                    f"skip {wall.isoformat()} is not an occurrence of the rule; name an "
                    f"occurrence's local start, {self.start.time().isoformat()} on one of "
                    "its days"
                )


def notice_warnings(config: Config) -> Iterator[str]:
    """Series whose lead time is not longer than the maintenance notice of a contract of
    a link they cover: those occurrences will count as normal time for that contract. An
    occurrence is announced when the daemon materialises it, a moment after its lead
    time has come, so a lead exactly the notice is already a moment short."""
    for index, series in enumerate(config.recurring):
        covered = [
            link
            for link in config.links
            if (not series.links and not series.customers)
            or link.id in series.links
            or link.customer in series.customers
        ]
        at = series.recurrence().first_instant()
        short: dict[str, timedelta] = {}
        for contract in config.contracts:
            if not any(link.id in contract.links for link in covered):
                continue
            terms = contract.terms_at(at, config.plans) or contract.terms_at(
                at + timedelta(days=3660), config.plans
            )
            if terms is not None and series.announce <= terms.maintenance_notice:
                short[contract.id] = terms.maintenance_notice
        if short:
            named = ", ".join(f"{c} ({format_duration(n)})" for c, n in sorted(short.items()))
            yield (
                f"recurring[{index}] {series.id}: announce {format_duration(series.announce)} "
                f"is not longer than the maintenance_notice of {named}: its occurrences "
                "will count as normal time there; announce more than "
                f"{format_duration(max(short.values()))} ahead to have them excluded"
            )
