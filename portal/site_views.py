"""Operations' view of the sites (vantage points): per site, whether it sees now and its
last blind spans, its canaries, its probe agents, and how much it measures. Made from
the config and one read of the database (`PortalReads.sites`), and shared by the page
(/noc/sites) and the API (/api/v1/sites), which only format it.

A site is blind while its blind span is open (its canaries fail, `collector.site_guard`:
what its probes see fail is recorded as unknown). A site of agents with no live agent is
silent: nothing measures its links, whose time turns unknown after `stale_after`. This
monitor's own site is measured by `linkwatch run` itself and has no agents.

Pure: no I/O, nothing formatted for people. For staff only: callers check the "noc"
capability before asking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from collector.agents import AgentSeen
from collector.site_record import BlindSpan
from kernel.config import Config
from kernel.config.sites import links_at

SiteState = Literal["sees", "blind", "silent"]


@dataclass(frozen=True, slots=True)
class SiteReadings:
    """What the database holds of the sites now."""

    agents: tuple[AgentSeen, ...]  # every agent registered, by site
    blind_spans: Mapping[str, tuple[BlindSpan, ...]]  # per site, the last ones, newest first


@dataclass(frozen=True, slots=True)
class Canary:
    id: str
    kind: str


@dataclass(frozen=True, slots=True)
class SiteView:
    id: str
    name: str
    home: bool  # this monitor's own site, measured by `linkwatch run` itself
    configured: bool  # False: a site the config no longer has, still in the database
    state: SiteState
    blind: BlindSpan | None  # the open blind span: since when, and why
    blind_spans: tuple[BlindSpan, ...]  # the last ones, newest first, the open one included
    canaries: tuple[Canary, ...]  # in config order
    blind_when: int  # failing canaries from which the site is blind (0: no canaries)
    agents: tuple[AgentSeen, ...]  # by id
    live_agents: int
    links: int  # links it measures
    measurements: int  # probes it takes of them


def site_views(config: Config, readings: SiteReadings) -> list[SiteView]:
    """Every site: this monitor's, then the config's `sites` in order, then any the
    database still names that the config no longer has (by id)."""
    home = config.site.id
    agents: dict[str, list[AgentSeen]] = {}
    for agent in readings.agents:
        agents.setdefault(agent.row.site_id, []).append(agent)
    configured = {site.id: site for site in config.all_sites()}
    gone = sorted(({*agents, *readings.blind_spans}) - configured.keys())
    views = []
    for site_id in [*configured, *gone]:
        site = configured.get(site_id)
        spans = tuple(readings.blind_spans.get(site_id, ()))
        open_span = next((span for span in spans if span.ends_at is None), None)
        mine = tuple(sorted(agents.get(site_id, ()), key=lambda a: a.row.id))
        live = sum(agent.row.live for agent in mine)
        measured = links_at(config.links, site_id, home) if site is not None else []
        state: SiteState = (
            "silent" if site_id != home and live == 0 else "blind" if open_span else "sees"
        )
        views.append(
            SiteView(
                id=site_id,
                name=(site.name if site is not None else "") or site_id,
                home=site_id == home,
                configured=site is not None,
                state=state,
                blind=open_span,
                blind_spans=spans,
                canaries=tuple(Canary(c.id, c.kind) for c in site.canaries) if site else (),
                blind_when=site.blind_threshold if site is not None else 0,
                agents=mine,
                live_agents=live,
                links=len(measured),
                measurements=sum(len(link.probes) for link in measured),
            )
        )
    return views
