"""Notification settings: channels (webhook, e-mail), routes of events to them, flapping.

Nothing here sends anything; `notify` does.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from kernel.config.fields import Duration, DurationOrZero, Id, _blank_is_none, _rule, _Strict
from kernel.domain import EventKind
from kernel.formatting import excerpt

_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


def _check_email(value: str) -> str:
    if not _EMAIL_RE.fullmatch(value):
        raise ValueError(f"{excerpt(value)} is not an e-mail address; write it as name@example.net")
    return value


Email = Annotated[str, AfterValidator(_check_email)]


def _check_template(value: str) -> str:
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    try:
        SandboxedEnvironment().parse(value)
    except TemplateSyntaxError as exc:
        raise ValueError(
            f"not a valid template: {exc.message} (line {exc.lineno}); "
            "write jinja2, e.g. {{ availability }}"
        ) from None
    return value


Template = Annotated[str, AfterValidator(_check_template)]


class SmtpSettings(_Strict):
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    # starttls: upgrade a plain connection (port 587); tls: TLS from the start (465).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    password: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    timeout: Duration = timedelta(seconds=30)
    ca_file: Path | None = None  # to trust a private CA; the system's CAs otherwise

    @_rule
    def _credentials(self) -> None:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")


class WebhookChannel(_Strict):
    """Each event as a JSON POST, signed with HMAC-SHA256 over the body."""

    id: Id
    kind: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")]
    secret: Annotated[str, Field(min_length=16)]
    timeout: Duration = timedelta(seconds=10)
    headers: dict[str, str] = Field(default_factory=dict)


class EmailChannel(_Strict):
    """Each event as an e-mail with plain-text and HTML parts."""

    id: Id
    kind: Literal["email"]
    smtp: SmtpSettings = SmtpSettings()
    sender: Email
    to: list[Email] = Field(min_length=1)


AnyChannel = WebhookChannel | EmailChannel
ChannelSpec = Annotated[AnyChannel, Field(discriminator="kind")]
CHANNEL_KINDS = ("webhook", "email")
# Names a route may list: an event kind, or a group of them.
EVENT_GROUPS: dict[str, tuple[EventKind, ...]] = {
    "all": tuple(k for k in EventKind if k is not EventKind.TEST),
    # links-down stands in for operations' link-downs of a shared failure, so a route
    # that takes "link" takes it too (a customer's route never gets it).
    "link": (EventKind.LINK_DOWN, EventKind.LINK_RECOVERED, EventKind.LINKS_DOWN),
    "site": (EventKind.SITE_BLIND, EventKind.SITE_RECOVERED),
    "maintenance": (
        EventKind.MAINTENANCE_ANNOUNCED,
        EventKind.MAINTENANCE_STARTED,
        EventKind.MAINTENANCE_FINISHED,
        EventKind.MAINTENANCE_CANCELLED,
    ),
    "restore": (EventKind.RESTORE_WARNING, EventKind.RESTORE_OVERDUE),
}
EventName = Literal[
    "all",
    "link",
    "maintenance",
    "link-down",
    "link-recovered",
    "budget",
    "sla-breached",
    "maintenance-announced",
    "maintenance-started",
    "maintenance-finished",
    "maintenance-cancelled",
    "monitor-blind",
    "site",
    "site-blind",
    "site-recovered",
    "restore",
    "restore-warning",
    "restore-overdue",
    "incident-update",
    "links-down",
]


def _all_events() -> list[EventName]:
    return ["all"]


class Route(_Strict):
    """Which events go to a channel: one customer's (customer set), or everyone's and the
    monitor's own for operations (customer unset)."""

    id: Id
    channel: Id
    events: list[EventName] = Field(default_factory=_all_events, min_length=1)
    customer: Id | None = None
    to: list[Email] | None = None  # e-mail recipients instead of the channel's
    # An outage this route is told of and nobody acknowledges within `escalate_after` is
    # told to route `escalate_to` (operations routes only; kernel/config/escalation.py).
    escalate_after: Duration | None = None
    escalate_to: Id | None = None

    @_rule
    def _escalation_complete(self) -> None:
        if (self.escalate_after is None) != (self.escalate_to is None):
            raise ValueError(
                "set escalate_after and escalate_to together: how long an outage may go "
                "unacknowledged, and the route told then"
            )

    def kinds(self) -> frozenset[EventKind]:
        chosen = {
            kind
            for name in self.events
            for kind in (EVENT_GROUPS[name] if name in EVENT_GROUPS else (EventKind(name),))
        }
        if self.customer is not None:  # never the monitor's own events to a customer
            chosen = {kind for kind in chosen if kind.customer_facing}
        return frozenset(chosen)


class Flapping(_Strict):
    """A link with `outages` or more outages `within` this long is flapping: its next
    down messages wait `hold_down` instead, so a flapping link sends a few, not a storm."""

    outages: int = Field(default=3, ge=2, le=1000)
    within: Duration = timedelta(hours=1)
    hold_down: Duration = timedelta(minutes=15)


class NotificationsConfig(_Strict):
    channels: list[ChannelSpec] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    # A down message waits this long; an outage over sooner sends neither message.
    hold_down: DurationOrZero = timedelta(minutes=1)
    flapping: Flapping = Flapping()
    retries: int = Field(default=8, ge=0, le=100)  # after the first attempt
    retry_backoff: Duration = timedelta(seconds=30)  # doubled per attempt, at most 1 h
    evaluate_every: Duration = timedelta(minutes=1)  # budgets, breaches, maintenance
    unknown_after: Duration = timedelta(minutes=10)  # unmeasured this long: monitor-blind
    portal_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")] | None = None

    def channel(self, channel_id: str) -> AnyChannel:
        return next(c for c in self.channels if c.id == channel_id)
