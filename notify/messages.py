"""What an event says to a person: a subject, facts, plain text and HTML, and the JSON
a webhook receives.

Pure functions of the event and the config: names and time zones come from the config,
figures from the event's payload. Times read in the customer's own zone (UTC for the
monitor's own events). A contract's `breach_notice` is rendered in a sandbox, since
whoever writes contracts need not be trusted with the process. A maintenance message says,
for each contract concerned, whether the window is excluded from its SLA or counts as
normal time, by the rule the SLA engine applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from kernel.config import Config, Contract, Customer, Link, ResolvedTerms
from kernel.domain import Event, EventKind, MaintenanceWindow
from kernel.formatting import (
    availability_text,
    count_of,
    decimal_pct,
    duration_text,
    local_time,
    money,
    share_text,
    target_text,
)
from notify.calendar import event_calendar
from notify.incident_messages import incident_update, links_down
from sla.compute import decide_maintenance
from sla.windows import window_containing

_TEMPLATES = Environment(
    loader=PackageLoader("notify", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_SANDBOX = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_DEFAULT_BREACH_NOTICE = (
    resources.files(__package__) / "templates" / "breach_notice.txt"
).read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    summary: str  # what happened, in a sentence or a short paragraph
    facts: tuple[tuple[str, str], ...]
    text: str  # plain-text body
    html: str  # HTML body
    link_url: str | None  # the portal page to look at, when a portal URL is configured
    calendar: str | None = None  # iCalendar (maintnote) of a maintenance notice

    def webhook_body(self, event: Event) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": event.id,
            "kind": event.kind.value,
            "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
            "customer_id": event.customer_id,
            "link_id": event.link_id,
            "subject": self.subject,
            "summary": self.summary,
            "facts": dict(self.facts),
            "url": self.link_url,
            "data": dict(event.payload),
        }
        if self.calendar is not None:
            body["calendar"] = self.calendar
        return body


def render(event: Event, config: Config) -> Message:
    customer = _customer(config, event.customer_id)
    tz: tzinfo = customer.tz if customer is not None else UTC
    link = _link(config, event.link_id)
    data = event.payload
    subject, summary, facts, path = _DESCRIBE[event.kind](event, config, customer, link, tz)
    url = None
    if config.notifications.portal_url is not None and path is not None:
        url = config.notifications.portal_url.rstrip("/") + path
    context = {
        "subject": subject,
        "summary": summary,
        "facts": facts,
        "url": url,
        "event": event,
        "customer": customer,
        "data": data,
    }
    return Message(
        subject=f"[Linkwatch] {subject}",
        summary=summary,
        facts=tuple(facts),
        text=_TEMPLATES.get_template("message.txt").render(context),
        html=_TEMPLATES.get_template("message.html").render(context),
        link_url=url,
        calendar=event_calendar(event, config, summary),
    )


_Described = tuple[str, str, list[tuple[str, str]], str | None]


def _link_name(link: Link | None, link_id: str | None) -> str:
    if link is None:
        return link_id or "?"
    return f"{link.description} ({link.id})" if link.description else link.id


def _when(value: object, tz: tzinfo) -> str:
    return local_time(datetime.fromisoformat(str(value)), tz)


def _who(customer: Customer | None) -> list[tuple[str, str]]:
    return [] if customer is None else [("Customer", customer.name)]


def _link_down(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> _Described:
    name = _link_name(link, event.link_id)
    since = _when(event.payload["down_since"], tz)
    return (
        f"DOWN: {name}",
        f"Link {name} is down since {since}: the monitor's probes confirm the outage.",
        [*_who(customer), ("Link", name), ("Down since", since)],
        f"/links/{event.link_id}",
    )


def _link_recovered(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> _Described:
    name = _link_name(link, event.link_id)
    data = event.payload
    lasted = duration_text(timedelta(seconds=int(str(data["down_s"]))), smallest="min")
    facts = [
        *_who(customer),
        ("Link", name),
        ("Down from", _when(data["down_since"], tz)),
        ("Down until", _when(data["down_until"], tz)),
        ("Outage", lasted),
    ]
    unmeasured = int(str(data.get("unmeasured_s", 0)))
    if unmeasured > 0:
        facts.append(
            ("Not measured after it", duration_text(timedelta(seconds=unmeasured), smallest="min"))
        )
    return (
        f"RECOVERED: {name} after {lasted}",
        f"Link {name} is available again since {_when(event.occurred_at.isoformat(), tz)}; "
        f"the outage lasted {lasted}.",
        facts,
        f"/links/{event.link_id}",
    )


def _subject_name(config: Config, data: Mapping[str, object]) -> str:
    subject = str(data.get("subject_id", ""))
    if subject.startswith("group:"):
        return f"the redundant links of contract {data.get('contract_id')}"
    return _link_name(_link(config, subject), subject)


def _budget(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> _Described:
    data = event.payload
    level = int(str(data["level"]))
    remaining = Decimal(str(data["budget_remaining_s"]))
    allowed = duration_text(_seconds(data["budget_s"]), smallest="min")
    window = str(data["window"])
    what = _subject_name(config, data)
    if level >= 100:
        subject = f"Error budget used up: {what}, {window}"
        summary = (
            f"The downtime {what} may have in {window} ({allowed}) is used up: the "
            f"availability target of {_target(data)} is missed "
            "for this window, and a service credit follows when it closes."
        )
    else:
        left = duration_text(_seconds(remaining), smallest="min")
        subject = f"{level} % of the error budget used: {what}, {window}"
        summary = (
            f"{what} has used {level} % of the downtime its contract allows in {window}: "
            f"{left} of {allowed} left before the target is missed."
        )
    facts = [
        *_who(customer),
        ("Contract", str(data["contract_id"])),
        ("Window", window),
        ("Budget used", share_text(Decimal(str(data["budget_used_pct"])))),
        ("Allowed downtime", allowed),
        ("Availability so far", _availability(config, data)),
        ("Target", _target(data)),
    ]
    return subject, summary, facts, _subject_path(data)


def _subject_path(data: Mapping[str, object]) -> str | None:
    subject = str(data.get("subject_id", ""))
    return None if subject.startswith("group:") else f"/links/{subject}"


def _seconds(value: object) -> timedelta:
    """A payload's exact decimal seconds (stored as text) as a duration."""
    return timedelta(seconds=float(Decimal(str(value))))


def _availability(config: Config, data: Mapping[str, object]) -> str:
    """A window's measured availability to its contract's decimals, as its pages and
    reports show it."""
    start = datetime.fromisoformat(str(data["window_start"]))
    decimals = config.availability_decimals(str(data["contract_id"]), start)
    return availability_text(_opt_decimal(data.get("availability_pct")), decimals)


def _target(data: Mapping[str, object]) -> str:
    return target_text(Decimal(str(data["target_pct"])))


def _opt_decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def breach_context(config: Config, event: Event, tz: tzinfo) -> dict[str, object]:
    """The variables a contract's `breach_notice` template may use."""
    data = event.payload
    currency = str(data["currency"])
    credit = Decimal(str(data["credit_amount"]))
    status = str(data["credit_status"])
    invoice = data.get("invoice_ref")
    if credit <= 0:
        when = "no credit is due for this window"
    elif status == "applied":
        when = f"credited on invoice {invoice}" if invoice else "credited on your invoice"
    elif status == "approved":
        when = "approved by billing; it will appear on your next invoice"
    else:
        when = "it will appear on your next invoice once billing has approved it"
    customer = _customer(config, event.customer_id)
    return {
        "customer": customer.name if customer else "",
        "contract": data["contract_id"],
        "subject": _subject_name(config, data),
        "window": data["window"],
        "availability": _availability(config, data),
        "target": _target(data),
        "downtime": duration_text(_seconds(data["down_s"]), smallest="min"),
        "incidents": data.get("incidents", 0),
        "credit": money(credit, currency),
        "credit_pct": share_text(Decimal(str(data["credit_pct"]))),
        "credit_status": status,
        "credit_when": when,
        "closed_at": _when(data["closes_at"], tz),
    }


def _breach(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> _Described:
    values = breach_context(config, event, tz)
    contract = _contract(config, str(event.payload["contract_id"]))
    starts = datetime.fromisoformat(str(event.payload["window_start"]))
    terms = contract.terms_at(starts, config.plans) if contract is not None else None
    summary = _breach_notice(terms.breach_notice if terms is not None else None, values)
    facts = [
        *_who(customer),
        ("Contract", str(values["contract"])),
        ("Service", str(values["subject"])),
        ("Window", str(values["window"])),
        ("Measured availability", str(values["availability"])),
        ("Target", str(values["target"])),
        ("Downtime counted", str(values["downtime"])),
        ("Credit", f"{values['credit']} ({values['credit_pct']})"),
        ("When", str(values["credit_when"])),
    ]
    return (
        f"SLA missed in {values['window']}: {values['subject']} at {values['availability']}",
        summary,
        facts,
        "/credits",
    )


def _breach_notice(template: str | None, values: Mapping[str, object]) -> str:
    """The contract's notice (its terms in force for the window), or the default one."""
    try:
        return _SANDBOX.from_string(template or _DEFAULT_BREACH_NOTICE).render(values).strip()
    except Exception:
        return _SANDBOX.from_string(_DEFAULT_BREACH_NOTICE).render(values).strip()


def _maintenance(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> _Described:
    data = event.payload
    description = str(data.get("description") or data["maintenance_id"])
    starts, ends = _when(data["starts_at"], tz), _when(data["ends_at"], tz)
    links = [_link_name(_link(config, str(i)), str(i)) for i in _strings(data.get("link_ids"))]
    verb = {
        EventKind.MAINTENANCE_ANNOUNCED: ("Maintenance planned", "is planned"),
        EventKind.MAINTENANCE_STARTED: ("Maintenance started", "has started"),
        EventKind.MAINTENANCE_FINISHED: ("Maintenance finished", "has finished"),
        EventKind.MAINTENANCE_CANCELLED: ("Maintenance cancelled", "has been cancelled"),
    }[event.kind]
    scope = f" on {', '.join(links)}" if links else ""
    facts = [*_who(customer), ("Work", description), ("From", starts), ("Until", ends)]
    if links:
        facts.append(("Links", ", ".join(links)))
    summary = f"Maintenance{scope} {verb[1]}: {description}, from {starts} until {ends}."
    if event.kind is EventKind.MAINTENANCE_CANCELLED:
        cancelled = _when(str(data["cancelled_at"]), tz)
        facts.append(("Cancelled", cancelled))
        withdrawn = datetime.fromisoformat(str(data["cancelled_at"])) <= datetime.fromisoformat(
            str(data["starts_at"])
        )
        if withdrawn:
            summary = (
                f"Maintenance{scope} planned from {starts} until {ends} has been cancelled: "
                f"{description}. No work will be done, and the time counts normally."
            )
        else:
            summary = (
                f"Maintenance{scope} was stopped early, at {cancelled}: {description}. "
                "From then on the time counts normally."
            )
    elif event.kind is not EventKind.MAINTENANCE_FINISHED:
        said, sla_facts = _sla_effect(event, config, customer)
        summary = " ".join([summary, *said])
        facts += sla_facts
    return (f"{verb[0]}: {description}", summary, facts, "/maintenance")


# Contracts named one by one in a message to operations; the rest are counted.
_CONTRACTS_NAMED = 20


def _sla_effect(
    event: Event, config: Config, customer: Customer | None
) -> tuple[list[str], list[tuple[str, str]]]:
    """What the window means for the SLA of each contract concerned, by the rule the SLA
    engine applies (`sla.compute.decide_maintenance`): excluded when it was announced at
    least the contract's `maintenance_notice` ahead, normal time when not. A customer reads
    a sentence and a fact per contract; operations read the contracts named by outcome."""
    data = event.payload
    window = MaintenanceWindow(
        id=str(data["maintenance_id"]),
        starts_at=datetime.fromisoformat(str(data["starts_at"])),
        ends_at=datetime.fromisoformat(str(data["ends_at"])),
        announced_at=datetime.fromisoformat(str(data["announced_at"])),
    )
    covered = set(_strings(data.get("link_ids")))
    given = window.starts_at - window.announced_at
    ahead = (
        f"announced {duration_text(given, smallest='min')} ahead"
        if given > timedelta(0)
        else "announced only after it began"
    )
    excluded: list[str] = []
    normal: list[str] = []
    said: list[str] = []
    facts: list[tuple[str, str]] = []
    for contract in config.contracts:
        if customer is not None and contract.customer != customer.id:
            continue
        if not covered & set(contract.links):
            continue
        terms = _terms_for_window(contract, config, window.starts_at)
        if terms is None:
            continue  # not in force then
        notice = duration_text(terms.maintenance_notice, smallest="min")
        if contract.group == "redundant" and not set(contract.links) <= covered:
            # A group is excluded only while all its links are; the others carry it.
            normal.append(contract.id)
            said.append(
                f"For contract {contract.id} it counts as normal time: only some of its "
                "redundant links are in this work, and the service stays available while "
                "another is up."
            )
            facts.append((f"SLA of {contract.id}", "normal time (only some of its links)"))
        elif decide_maintenance([window], terms.maintenance_notice)[0].excluded:
            excluded.append(contract.id)
            said.append(
                f"For contract {contract.id} it is excluded from the availability measured: "
                f"it was {ahead}, and the contract asks for {notice}. Time past the "
                "announced end counts normally."
            )
            facts.append((f"SLA of {contract.id}", f"excluded ({ahead}, {notice} required)"))
        else:
            normal.append(contract.id)
            said.append(
                f"For contract {contract.id} it counts as normal time, so downtime during it "
                f"counts against the SLA: it was {ahead}, and the contract asks for {notice} "
                "to exclude it."
            )
            facts.append((f"SLA of {contract.id}", f"normal time ({ahead}, {notice} required)"))
    if customer is not None:
        return said, facts
    parts = []
    ops_facts = []
    for ids, what, fact in (
        (excluded, "excluded from the SLA of", "Excluded from the SLA of"),
        (normal, "normal time for", "Normal time for"),
    ):
        if not ids:
            continue
        named = ", ".join(ids[:_CONTRACTS_NAMED])
        if len(ids) > _CONTRACTS_NAMED:
            named += f" and {len(ids) - _CONTRACTS_NAMED} more"
        parts.append(f"{what} {count_of(len(ids), 'contract')}")
        ops_facts.append((fact, named))
    summary = [f"It was {ahead}: {'; '.join(parts)}."] if parts else []
    return summary, ops_facts


def _terms_for_window(contract: Contract, config: Config, moment: datetime) -> ResolvedTerms | None:
    """The terms that measure the window containing `moment`: those in force at the
    window's start (docs/design.md), or at `moment` for a contract that began within it."""
    terms = contract.terms_at(moment, config.plans)
    if terms is None:
        return None
    tz = next((c.tz for c in config.customers if c.id == contract.customer), ZoneInfo("UTC"))
    start = window_containing(terms.window, tz, moment).start
    return contract.terms_at(start, config.plans) or terms


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _monitor_blind(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> _Described:
    blind = event.payload.get("links")
    entries = blind if isinstance(blind, list) else []
    names = [
        f"{_link_name(_link(config, str(e['link_id'])), str(e['link_id']))} since "
        f"{_when(e['since'], tz)}"
        for e in entries
        if isinstance(e, dict)
    ]
    count = int(str(event.payload.get("count", len(names))))
    shown = names[:20] + ([f"... and {count - 20} more"] if count > 20 else [])
    return (
        f"Monitor cannot measure {count} link{'s' if count != 1 else ''}",
        f"The monitor has not been able to measure {count} link"
        f"{'s' if count != 1 else ''} for a while, so their availability is unknown: "
        "check the probes, their network path and the monitor host.",
        [("Links", "; ".join(shown))],
        "/noc",
    )


def _test(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> _Described:
    channel = str(event.payload.get("channel", ""))
    return (
        f"Test message for channel {channel}",
        f"This is a test of the notification channel {channel}. If you can read it, "
        "Linkwatch can reach you here.",
        [("Channel", channel), ("Sent", local_time(event.occurred_at, tz))],
        None,
    )


def _site(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> _Described:
    data = event.payload
    site = str(data["site_id"])
    named = f"{config.site.name} ({site})" if config.site.name else site
    since = _when(data["since"], tz)
    facts = [("Site", named), ("Blind since", since), ("Why", str(data["reason"]))]
    if event.kind is EventKind.SITE_BLIND:
        return (
            f"MONITOR BLIND: site {named}",
            f"The monitor at site {named} cannot see since {since}: {data['reason']}. "
            "What its probes see fail meanwhile is recorded as unknown, not as the "
            "customers' outages.",
            facts,
            "/noc",
        )
    lasted = duration_text(timedelta(seconds=int(str(data["blind_s"]))), smallest="min")
    return (
        f"MONITOR SEES AGAIN: site {named} after {lasted}",
        f"The monitor at site {named} sees again since {_when(data['until'], tz)}; it was "
        f"blind for {lasted}, which counts as unknown time, not downtime.",
        [*facts, ("Blind until", _when(data["until"], tz)), ("Blind for", lasted)],
        "/noc",
    )


def _restore(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> _Described:
    data = event.payload
    what = _subject_name(config, data)
    contract = str(data["contract_id"])
    within = duration_text(_seconds(data["within_s"]), exact=True)
    since, deadline = _when(data["since"], tz), _when(data["deadline"], tz)
    per = duration_text(_seconds(data["credit_per_s"]), exact=True)
    credit = (
        f"each started {per} beyond it earns {decimal_pct(Decimal(str(data['credit_pct'])))} "
        f"of the fee, at most {decimal_pct(Decimal(str(data['cap_pct'])))} in the window"
    )
    facts = [
        *_who(customer),
        ("Contract", contract),
        ("Down since", since),
        ("Restore within", within),
        ("Deadline", deadline),
    ]
    if event.kind is EventKind.RESTORE_OVERDUE:
        return (
            f"RESTORE OVERDUE: {what}, {contract}",
            f"{what} is down since {since} and was not restored within the {within} "
            f"contract {contract} allows (deadline {deadline}): {credit}.",
            facts,
            _subject_path(data),
        )
    share = decimal_pct(Decimal(str(data["warn_at_pct"])))
    return (
        f"Restore deadline near: {what}, {contract}",
        f"{what} is down since {since}: {share} of the {within} contract {contract} allows "
        f"to restore it are used. Restore it by {deadline}; after that {credit}.",
        facts,
        _subject_path(data),
    )


def _escalated(
    event: Event, config: Config, customer: Customer | None, link: Link | None, tz: tzinfo
) -> _Described:
    name = _link_name(link, event.link_id)
    data = event.payload
    since = _when(data["down_since"], tz)
    waited = duration_text(timedelta(seconds=int(str(data["unacknowledged_s"]))), smallest="min")
    return (
        f"ESCALATED: {name} down, not acknowledged after {waited}",
        f"Link {name} is down since {since} and nobody has acknowledged the outage in "
        f"{waited}: it is escalated to you (step {data['step']}, after route "
        f"{data['from_route']}). Acknowledge it on the NOC page to stop the escalation.",
        [
            *_who(customer),
            ("Link", name),
            ("Down since", since),
            ("Unacknowledged for", waited),
            ("Escalated from", str(data["from_route"])),
        ],
        "/noc",
    )


_DESCRIBE = {
    EventKind.LINK_DOWN: _link_down,
    EventKind.LINK_RECOVERED: _link_recovered,
    EventKind.BUDGET: _budget,
    EventKind.SLA_BREACHED: _breach,
    EventKind.MAINTENANCE_ANNOUNCED: _maintenance,
    EventKind.MAINTENANCE_STARTED: _maintenance,
    EventKind.MAINTENANCE_FINISHED: _maintenance,
    EventKind.MAINTENANCE_CANCELLED: _maintenance,
    EventKind.MONITOR_BLIND: _monitor_blind,
    EventKind.SITE_BLIND: _site,
    EventKind.SITE_RECOVERED: _site,
    EventKind.TEST: _test,
    EventKind.RESTORE_WARNING: _restore,
    EventKind.RESTORE_OVERDUE: _restore,
    EventKind.OUTAGE_ESCALATED: _escalated,
    EventKind.INCIDENT_UPDATE: incident_update,
    EventKind.LINKS_DOWN: links_down,
}


def _customer(config: Config, customer_id: str | None) -> Customer | None:
    return next((c for c in config.customers if c.id == customer_id), None)


def _link(config: Config, link_id: str | None) -> Link | None:
    return next((link for link in config.links if link.id == link_id), None)


def _contract(config: Config, contract_id: str) -> Contract | None:
    return next((c for c in config.contracts if c.id == contract_id), None)
