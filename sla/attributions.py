"""Outages the customer caused: attributing them, withdrawing that, and what it changes.

Staff attribute part of a link's outage to the customer (`collector.attributions` keeps
it); the contract's `customer_caused` term says whether that time is excluded like
announced maintenance (`sla.compute`). Either act recomputes the ledger for every window
of the link's contracts that the time touches, at once: open and closed rows take the
new figures, and a settled row gets an adjustment awaiting approval whose reason names
the attribution (`sla.ledger.refresh_ledger`). The attribution is stored first, in its
own transaction, so a ledger that cannot be written then keeps the attribution, and the
next refresh of those windows brings the rows in line.

Also here: the words people read about attributions in reports. Nothing here decides
who may attribute; that is the portal's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from collector import Database
from collector.attributions import Attribution, attribute, withdraw
from kernel.config import Config
from kernel.formatting import duration_text, local_time
from sla.ledger import LedgerRefresh, TimeRange, refresh_ledger
from sla.report import ContractWindow


@dataclass(frozen=True, slots=True)
class AttributionChange:
    """An attribution made or withdrawn, and what the ledger did about it."""

    attribution: Attribution
    ledger: LedgerRefresh


def contracts_of_link(config: Config, link_id: str) -> list[str]:
    return [c.id for c in config.contracts if link_id in c.links]


async def attribute_outage(
    db: Database,
    config: Config,
    link_id: str,
    outage_start: datetime,
    *,
    reason: str,
    by: str,
    now: datetime,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> AttributionChange:
    """Attribute (part of) an outage to the customer, then recompute the ledger."""
    made = await attribute(
        db,
        link_id,
        outage_start,
        reason=reason,
        by=by,
        at=now,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    because = f"outage attribution #{made.id} to the customer by {by} ({made.reason})"
    return AttributionChange(made, await _follow(db, config, made, now, by, because))


async def withdraw_attribution(
    db: Database,
    config: Config,
    link_id: str,
    attribution_id: int,
    *,
    reason: str,
    by: str,
    now: datetime,
) -> AttributionChange:
    """Withdraw an attribution (a disputed one), then recompute the ledger."""
    gone = await withdraw(db, link_id, attribution_id, reason=reason, by=by, at=now)
    because = f"withdrawal of outage attribution #{gone.id} by {by} ({gone.withdrawn_reason})"
    return AttributionChange(gone, await _follow(db, config, gone, now, by, because))


async def _follow(
    db: Database, config: Config, made: Attribution, now: datetime, by: str, because: str
) -> LedgerRefresh:
    contracts = contracts_of_link(config, made.link_id)
    if not contracts:
        return LedgerRefresh((), 0, 0, 0, 0, (), 0)
    return await refresh_ledger(
        db,
        config,
        TimeRange(made.starts_at, made.ends_at),
        now,
        actor=by,
        contract_ids=contracts,
        because=because,
    )


# --- what people read ---------------------------------------------------------------------


def policy_words(policy: str) -> str:
    """What the contract does with customer-caused time, for people."""
    if policy == "exclude":
        return "excluded from availability, like announced maintenance"
    return "counted as downtime, as the contract says"


def report_notes(items: Iterable[ContractWindow]) -> list[str]:
    """One line per result with outage time attributed to the customer: how much, and
    whether the contract excludes it (`linkwatch report sla` prints them as notes)."""
    lines = []
    for item in items:
        caused = item.result.customer_caused_us
        if not caused:
            continue
        lines.append(
            f"{item.contract.id} {item.subject.id} {item.result.window.label}: "
            f"{duration_text(caused, exact=True, space=' ')} of outage attributed to the "
            f"customer, {policy_words(item.terms.customer_caused)} "
            f"(customer_caused: {item.terms.customer_caused})"
        )
    return lines


def describe(attribution: Attribution, tz: tzinfo) -> str:
    """One attribution for a person, in `tz`: the time, who said why and when, and its
    withdrawal if any."""
    start, end = attribution.starts_at, attribution.ends_at
    text = (
        f"{local_time(start, tz)} to {local_time(end, tz)} "
        f"({duration_text(end - start, exact=True, space=' ')}) attributed to the customer "
        f"by {attribution.created_by} on {local_time(attribution.created_at, tz)}: "
        f"{attribution.reason}"
    )
    if attribution.withdrawn_at is not None:
        text += (
            f"; withdrawn by {attribution.withdrawn_by} on "
            f"{local_time(attribution.withdrawn_at, tz)}: {attribution.withdrawn_reason}"
        )
    return text
