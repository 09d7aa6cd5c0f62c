"""Maintenance windows as people read them: when, announced how far ahead, and whether
each counts against availability under the contracts that decide it.

Shared by the link page and the maintenance page. Pure: the windows come from the
caller (see `PortalReads.maintenance_around`), and nothing here checks who may see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Literal

from kernel.config import Config, Contract
from kernel.domain import MaintenanceWindow
from portal.formatting import Moment, duration_text, moment
from sla.compute import decide_maintenance

DEFAULT_NOTICE = timedelta(hours=72)  # kernel.config.ResolvedTerms' default


@dataclass(frozen=True, slots=True)
class MaintenanceView:
    id: str
    description: str
    starts: Moment
    ends: Moment
    announced: Moment
    lead: str  # how long before its start it was announced: "4 d ahead"
    state: Literal["upcoming", "in progress", "past"]
    excluded: bool | None  # None: no contract decides it here
    verdict: str  # whether it counts against availability, and why
    links: tuple[str, ...] = ()  # what it covers that the viewer may see (maintenance page)
    cancelled: Moment | None = None  # when it was withdrawn or stopped early
    withdrawn: bool = False  # cancelled before it began: no work at all


def notice_of(contract: Contract, config: Config, at: datetime) -> timedelta | None:
    terms = contract.terms_at(at, config.plans)
    return None if terms is None else terms.maintenance_notice


def maintenance_view(
    window: MaintenanceWindow,
    contracts: Sequence[Contract],
    config: Config,
    now: datetime,
    tz: tzinfo,
    *,
    links: tuple[str, ...] = (),
    rule: bool = False,
) -> MaintenanceView:
    """`contracts`: those whose exclusion rule decides this window for the viewer (the
    concerned links' contracts); each uses the terms in force when the work starts. With
    `rule`, too many contracts are concerned to list: the verdict states the rule."""
    decisions = []
    for contract in contracts:
        notice = notice_of(contract, config, window.starts_at)
        if notice is not None:
            decisions.append((contract.id, decide_maintenance([window], notice)[0]))
    lead = window.starts_at - window.announced_at
    if rule:
        excluded = None
        verdict = (
            "Excluded for contracts that require at most "
            f"{duration_text(max(lead, timedelta(0)))} of notice; counts normally for the rest."
        )
    elif not decisions:
        excluded, verdict = None, "No contract applies to it."
    elif all(d.excluded for _, d in decisions):
        excluded = True
        verdict = f"Excluded from availability: {decisions[0][1].reason}."
        if len({d.reason for _, d in decisions}) > 1:
            verdict = "Excluded from availability for every contract concerned."
    elif not any(d.excluded for _, d in decisions):
        excluded = False
        verdict = f"Counts as normal time: {decisions[0][1].reason}."
        if len({d.reason for _, d in decisions}) > 1:
            verdict = "Counts as normal time: announced too late for every contract concerned."
    else:
        excluded = None
        included = sorted(contract_id for contract_id, d in decisions if d.excluded)
        verdict = "Excluded for " + ", ".join(included) + "; counts as normal time for the rest."
    # A cancelled window is listed where it was announced (upcoming) until its start
    # passes, and is over once its cancellation is.
    if window.starts_at > now:
        state: Literal["upcoming", "in progress", "past"] = "upcoming"
    elif window.covers_until <= now:
        state = "past"
    else:
        state = "in progress"
    starts, ends, announced = (
        moment(window.starts_at, now, tz),
        moment(window.ends_at, now, tz),
        moment(window.announced_at, now, tz),
    )
    if window.withdrawn:
        verdict = "Cancelled before it began: no work, and the time counts normally."
    assert starts is not None
    assert ends is not None
    assert announced is not None
    return MaintenanceView(
        id=window.id,
        description=window.description,
        starts=starts,
        ends=ends,
        announced=announced,
        lead=f"{duration_text(lead)} ahead" if lead > timedelta(0) else "after it began",
        state=state,
        excluded=False if window.withdrawn else excluded,
        verdict=verdict,
        links=links,
        cancelled=None if window.cancelled_at is None else moment(window.cancelled_at, now, tz),
        withdrawn=window.withdrawn,
    )


def strictest_notice(contracts: Sequence[Contract], config: Config, now: datetime) -> timedelta:
    """The longest notice the link's contracts require: maintenance shown excluded on the
    bar is excluded under every one of them."""
    notices = [n for c in contracts if (n := notice_of(c, config, now)) is not None]
    return max(notices, default=DEFAULT_NOTICE)
