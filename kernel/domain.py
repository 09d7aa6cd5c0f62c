"""Domain types shared by probes, collector, SLA engine and portal.

Frozen dataclasses, units in names, times in UTC and timezone-aware. Nothing here
does I/O or imports another package of ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Outcome(StrEnum):
    """What one sample says about its target."""

    UP = "up"
    DEGRADED = "degraded"  # reachable, but loss, RTT or response time crossed a threshold
    DOWN = "down"
    UNKNOWN = "unknown"  # the monitor itself could not measure

    @property
    def available(self) -> bool:
        return self in (Outcome.UP, Outcome.DEGRADED)


class LinkStatus(StrEnum):
    """A link's state as people see it; the colour follows from it."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"
    MAINTENANCE = "maintenance"

    @property
    def severity(self) -> int:
        """Higher is worse; sorts a NOC list worst first."""
        return _SEVERITY[self]


_SEVERITY = {
    LinkStatus.DOWN: 4,
    LinkStatus.DEGRADED: 3,
    LinkStatus.UNKNOWN: 2,
    LinkStatus.MAINTENANCE: 1,
    LinkStatus.UP: 0,
}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe run measured. A target's failure is data here, never an exception."""

    outcome: Outcome
    # ICMP: mean round trip of the replies received; TCP: the handshake; HTTP: the whole
    # response (see RESPONSE_TIME_KINDS in kernel.config).
    rtt_ms: float | None = None
    rtt_min_ms: float | None = None
    rtt_max_ms: float | None = None
    jitter_ms: float | None = None
    loss_pct: float | None = None
    error: str | None = None  # short reason for down/unknown, e.g. "timeout", "dns: no such host"
    phases_ms: Mapping[str, float] = field(default_factory=dict)
    # Measurements beyond reachability, e.g. SNMP's in_bps, out_bps, in_errors_per_s,
    # out_errors_per_s, in_discards_per_s and if_index. Stored with the sample. Left out
    # of the hash (a dict has none); equality still compares it.
    metrics: Mapping[str, float] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class SampleTimes:
    """The times a sample taken elsewhere (an import, an agent) may have to be stored:
    not older than `horizon` before now, nor later than `skew` after it. Outside them a
    time is a mistake, whoever made it: a sample dated 9999 or 0001 would make the
    derived states and every window they reach meaningless."""

    horizon: timedelta
    skew: timedelta

    def problem(self, observed_at: datetime, now: datetime) -> str | None:
        """Why `observed_at` is not accepted at `now`, or None when it is."""
        if observed_at > now + self.skew:
            return (
                f"is in the future: more than {_short(self.skew)} after now "
                f"({_iso(now)}; collector.clock_skew)"
            )
        oldest = now - self.horizon
        if observed_at < oldest:
            return (
                f"is older than {_short(self.horizon)} before now, the oldest a sample may "
                f"be ({_iso(oldest)}; collector.sample_horizon)"
            )
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _short(span: timedelta) -> str:
    days, seconds = span.days, span.seconds
    if days and not seconds:
        return f"{days} d"
    if not days and not seconds % 60:
        return f"{seconds // 60} min"
    return str(span)


@dataclass(frozen=True, slots=True)
class Sample:
    """One stored measurement. Its identity is (link_id, probe_id, observed_at)."""

    link_id: str
    probe_id: str
    observed_at: datetime  # UTC, tz-aware: when the probe run started
    outcome: Outcome
    rtt_ms: float | None = None
    rtt_min_ms: float | None = None
    rtt_max_ms: float | None = None
    jitter_ms: float | None = None
    loss_pct: float | None = None
    error: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict, hash=False)  # as ProbeResult
    agent_id: str | None = None  # the probe agent that took it; None: `linkwatch run`

    def __post_init__(self) -> None:
        if self.observed_at.tzinfo is None:
            raise ValueError("Sample.observed_at must be timezone-aware")

    @classmethod
    def from_result(
        cls, link_id: str, probe_id: str, observed_at: datetime, result: ProbeResult
    ) -> Sample:
        return cls(
            link_id=link_id,
            probe_id=probe_id,
            observed_at=observed_at,
            outcome=result.outcome,
            rtt_ms=result.rtt_ms,
            rtt_min_ms=result.rtt_min_ms,
            rtt_max_ms=result.rtt_max_ms,
            jitter_ms=result.jitter_ms,
            loss_pct=result.loss_pct,
            error=result.error,
            metrics=result.metrics,
        )


@dataclass(frozen=True, slots=True)
class ProbeState:
    """A probe's current status, derived from its recent samples by the rules of docs/design.md."""

    probe_id: str
    kind: str
    status: LinkStatus  # UP, DEGRADED, DOWN or UNKNOWN
    since: datetime | None  # start of the current status (an outage starts at its first down)
    last_observed_at: datetime | None
    rtt_ms: float | None = None
    loss_pct: float | None = None
    error: str | None = None
    since_exact: bool = True  # False: the status began at or before `since`


@dataclass(frozen=True, slots=True)
class LinkState:
    """A link's current status with the probe states it was derived from."""

    link_id: str
    customer_id: str
    description: str
    status: LinkStatus
    since: datetime | None
    probes: tuple[ProbeState, ...] = ()
    since_exact: bool = True  # False: the status began at or before `since`


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Planned work. Empty link_ids and customer_ids means it covers every link.

    A cancelled window covers time only up to its cancellation: nothing when it was
    cancelled before it began, the time until then when the work stopped early.
    """

    id: str
    starts_at: datetime
    ends_at: datetime
    announced_at: datetime
    description: str = ""
    link_ids: tuple[str, ...] = ()
    customer_ids: tuple[str, ...] = ()
    cancelled_at: datetime | None = None
    reference: str = ""  # the ticket or change number staff gave it
    impact: str = "OUTAGE"  # what the work does to the service, as BCOP maintnote names it
    sequence: int = 0  # how often it was rescheduled: each time a new announcement

    @property
    def covers_until(self) -> datetime:
        """The end of the time it covers: its end, or its cancellation if earlier (never
        before its start; equal to it when it covers nothing)."""
        if self.cancelled_at is None:
            return self.ends_at
        return min(self.ends_at, max(self.starts_at, self.cancelled_at))

    @property
    def withdrawn(self) -> bool:
        """Cancelled before it began: announced, but no work, nothing covered."""
        return self.cancelled_at is not None and self.cancelled_at <= self.starts_at


class EventKind(StrEnum):
    """What a notification is about; routes in the config choose kinds by these names."""

    LINK_DOWN = "link-down"  # a confirmed outage began (the link's latest status)
    LINK_RECOVERED = "link-recovered"  # that outage ended, with its duration
    BUDGET = "budget"  # a contract's error budget crossed a warning level in a window
    SLA_BREACHED = "sla-breached"  # a closed window missed its target; the credit it implies
    MAINTENANCE_ANNOUNCED = "maintenance-announced"
    MAINTENANCE_STARTED = "maintenance-started"
    MAINTENANCE_FINISHED = "maintenance-finished"
    MAINTENANCE_CANCELLED = "maintenance-cancelled"  # withdrawn, or stopped early
    MONITOR_BLIND = "monitor-blind"  # links the monitor cannot measure, for ops only
    SITE_BLIND = "site-blind"  # the monitor's canaries fail: it cannot see, for ops only
    SITE_RECOVERED = "site-recovered"  # they answer again, with how long it was blind
    TEST = "test"  # `linkwatch notify test`
    # A running outage of a contract with a restore term reached its warning share of
    # `within`, or its deadline: for operations only, once per outage each.
    RESTORE_WARNING = "restore-warning"
    RESTORE_OVERDUE = "restore-overdue"
    # A running outage nobody acknowledged within a route's `escalate_after`: told to the
    # route it escalates to, for operations only, once per outage and route.
    OUTAGE_ESCALATED = "outage-escalated"
    # Staff posted an update on an incident (one or more outages of a shared failure),
    # once per customer concerned naming their links only, and once for operations.
    INCIDENT_UPDATE = "incident-update"
    # Links behind the same upstream that went down within a minute of each other: one
    # message for operations instead of one per link; customers keep their link-down.
    LINKS_DOWN = "links-down"

    @property
    def customer_facing(self) -> bool:
        """Whether a customer may receive it (about their own links) at all."""
        return self not in (
            EventKind.MONITOR_BLIND,
            EventKind.SITE_BLIND,
            EventKind.SITE_RECOVERED,
            EventKind.TEST,
            EventKind.RESTORE_WARNING,
            EventKind.RESTORE_OVERDUE,
            EventKind.OUTAGE_ESCALATED,
            EventKind.LINKS_DOWN,
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One happening to notify about; `id` is the same whenever the same happening is
    seen again, which is what makes writing and delivering it idempotent."""

    id: str
    kind: EventKind
    occurred_at: datetime
    customer_id: str | None  # whose event; None: about the monitor, for ops only
    link_id: str | None = None
    payload: Mapping[str, object] = field(default_factory=dict)
