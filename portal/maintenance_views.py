"""Maintenance windows as people read them: when, announced how far ahead, and whether
each counts against availability under the contracts that decide it; and, beside an
outage in a list of outages, how much of it excluded maintenance took out.

Shared by the link page, the maintenance page and the incident lists. Pure: the
windows come from the caller (see `PortalReads.maintenance_around`), and nothing here
checks who may see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Literal

from collector.state_reads import Incident
from kernel.config import Config, Contract, Link
from kernel.domain import MaintenanceWindow
from portal.formatting import Moment, duration_text, local_span, moment
from sla.compute import decide_maintenance
from sla.report import OutageExclusion, outage_exclusions

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


def exclusion_note(
    found: Sequence[OutageExclusion], outage_us: int, tz: tzinfo, *, running: bool = False
) -> str | None:
    """What excluded maintenance took out of an outage lasting `outage_us` (so far, while
    `running`), per the link's contracts (`sla.report.outage_exclusions`): "Excluded:
    planned maintenance “Core upgrade”, 2026-11-18 02:00 CET to 2026-11-18 04:00 CET", or
    "35 min of 1 h 10 min excluded: ..." for part of it. Contracts that decide it alike
    are one verdict; when they differ, each is named ("... under contract acme-gold;
    counts in full under contract acme-silver"). None when no contract excludes any."""
    if not any(f.excluded_us for f in found):
        return None
    if len({(f.excluded_us, f.windows) for f in found}) == 1:
        text = f"{_how_much(found[0].excluded_us, outage_us, running)}: {_windows(found[0], tz)}"
        return text[0].upper() + text[1:]
    parts = []
    for f in found:
        if f.excluded_us:
            how_much = _how_much(f.excluded_us, outage_us, running)
            parts.append(f"{how_much} under contract {f.contract_id}: {_windows(f, tz)}")
        else:
            parts.append(f"counts in full under contract {f.contract_id}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:]


def outage_note(
    outage: Incident,
    link: Link,
    contracts: Sequence[Contract],
    config: Config,
    planned: Sequence[MaintenanceWindow],
    now: datetime,
    tz: tzinfo,
) -> str | None:
    """`exclusion_note` of one stored outage of `link` under `contracts` (those of the
    link the viewer may see), with `planned` every maintenance window around it."""
    end = outage.ends_at or max(now, outage.starts_at)
    found = outage_exclusions(
        config, contracts, link.id, link.customer, outage.starts_at, end, planned
    )
    lasted = (end - outage.starts_at) // timedelta(microseconds=1)
    return exclusion_note(found, lasted, tz, running=outage.ends_at is None)


def _how_much(excluded_us: int, outage_us: int, running: bool) -> str:
    if excluded_us >= outage_us:
        return "excluded"
    so_far = " so far" if running else ""
    return f"{duration_text(excluded_us)} of {duration_text(outage_us)}{so_far} excluded"


def _windows(found: OutageExclusion, tz: tzinfo) -> str:
    described = [
        f"“{w.description or w.id}”, {local_span(w.starts_at, w.covers_until, tz)}"
        for w in found.windows
    ]
    return "planned maintenance " + " and ".join(described)
