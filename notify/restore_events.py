"""`restore-warning` and `restore-overdue`: a running outage of a contract with a restore
term has reached the term's warning share of `within`, or `within` itself.

Timed as the SLA engine times it (from the outage's confirmed start, excluded time left
out), on the contract's window running now. Each event's id is the outage's (contract,
subject, start), so it is stored once however often passes run; an outage first seen
past its deadline is told only as overdue. For operations only: a customer's route never
takes these (`EventKind.customer_facing`). Reads the database; writes nothing itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.database import Database
from kernel.config import Config
from kernel.domain import Event, EventKind
from sla.compute import seconds
from sla.ledger import TimeRange, window_labels
from sla.report import ContractWindow, contract_windows, restore_clock_at, restore_rule
from sla.restore import warn_at_us

_US = timedelta(microseconds=1)


async def restore_events(db: Database, config: Config, now: datetime) -> list[Event]:
    ids = []
    for contract in config.contracts:
        terms = contract.terms_at(now, config.plans)
        if terms is not None and terms.restore is not None:
            ids.append(contract.id)
    if not ids:
        return []
    events = []
    for label in window_labels(config, TimeRange(now - timedelta(seconds=1), now), now):
        for item in await contract_windows(db, config, label, now, contract_ids=ids):
            window = item.result.window
            if window.start <= now < window.end:
                events += events_of(item, now)
    return events


def events_of(item: ContractWindow, now: datetime) -> list[Event]:
    """The event the outage running now has reached, if any (the later one only)."""
    rule = restore_rule(item.terms)
    if rule is None or not item.result.continuing:
        return []
    outage = item.result.continuing[-1]
    clock = restore_clock_at(item, now, running=False)
    assert clock is not None  # a restore term and a running outage
    counted, within, deadline = outage.counted_us, rule.within // _US, clock.deadline
    if counted >= within:
        kind, reached = EventKind.RESTORE_OVERDUE, within
    elif counted >= warn_at_us(rule):
        kind, reached = EventKind.RESTORE_WARNING, warn_at_us(rule)
    else:
        return []
    subject = item.subject
    start = outage.start.astimezone(UTC).isoformat()
    return [
        Event(
            id=f"{kind.value}:{item.contract.id}:{subject.id}:{start}",
            kind=kind,
            occurred_at=now - (counted - reached) * _US,
            customer_id=item.customer_id,
            link_id=subject.link_ids[0] if len(subject.link_ids) == 1 else None,
            payload={
                "contract_id": item.contract.id,
                "subject_id": subject.id,
                "window": item.result.window.label,
                "since": start,
                "deadline": deadline.astimezone(UTC).isoformat(),
                "within_s": str(seconds(within)),
                "counted_s": str(seconds(counted)),
                "warn_at_pct": str(rule.warn_at_pct),
                "credit_per_s": str(seconds(rule.credit_per // _US)),
                "credit_pct": str(rule.credit_pct),
                "cap_pct": str(rule.cap_pct),
            },
        )
    ]
