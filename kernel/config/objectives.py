"""Objectives on any stored metric, and what each probe kind stores to measure them on.

`objectives: [{metric: jitter_ms, aggregate: p95, limit: 5, credit: 2}]`: an objective
names a figure Linkwatch stores with a sample (a column, or a key of the sample's
`metrics`), an aggregate over the window's available samples of the contract's links
(of `probe` when given) and a limit; it is met at or under the limit, and a missed one
adds its credit. `STORED_METRICS` is what each probe kind writes (see the probes'
modules); `check_objectives` holds every objective to what the contract's links' probes
actually measure. The evaluation is `sla.objectives`; nothing here computes anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from ipaddress import ip_address
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field

from kernel.config.fields import Id, Percent, _rule, _Strict
from kernel.config.links import AnyProbe, HttpProbe
from kernel.config.raw import Path_
from kernel.config.sites import base_probe_id
from kernel.formatting import excerpt

if TYPE_CHECKING:  # contracts import this module for their terms
    from kernel.config.contracts import Contract, Plan
    from kernel.config.links import Link

Aggregate = Literal["mean", "p95", "p99", "max", "share_above"]
AGGREGATES: tuple[Aggregate, ...] = ("mean", "p95", "p99", "max", "share_above")

# Sample columns (collector/migrations/001_samples.sql), by the probe kinds that fill them.
# An HTTP probe's rtt_ms is its whole response, not a round trip (RESPONSE_TIME_KINDS):
# as an objective it is `total_ms`, the same figure under its own name.
COLUMNS = ("rtt_ms", "rtt_min_ms", "rtt_max_ms", "jitter_ms", "loss_pct")
_HTTP_PHASES = ("dns_ms", "connect_ms", "tls_ms", "redirect_ms", "first_byte_ms", "total_ms")
STORED_METRICS: Mapping[str, tuple[str, ...]] = {
    # probes/icmp.py: a burst's loss, RTT min/avg/max and jitter.
    "icmp": COLUMNS,
    # probes/tcp.py: the handshake.
    "tcp": ("rtt_ms",),
    # probes/http.py: the phases as milestones, redirects followed, certificate days left.
    "http": (*_HTTP_PHASES, "redirects", "cert_days_left"),
    # probes/snmp/counters.py and interface.py: rates per second and utilisation.
    "snmp": (
        "in_bps", "out_bps", "in_errors_per_s", "out_errors_per_s", "in_discards_per_s",
        "out_discards_per_s", "in_utilisation_pct", "out_utilisation_pct", "speed_bps",
    ),
}  # fmt: skip

_METRIC = r"^[a-z][a-z0-9_]{0,62}$"
_LIMIT = Annotated[Decimal, Field(ge=-(10**15), le=10**15, decimal_places=6)]


class MetricObjective(_Strict):
    """`aggregate` of `metric` over the window's available samples, met at or under
    `limit`. For share_above, the limit is the percent of samples over `above`."""

    metric: Annotated[str, Field(pattern=_METRIC)]
    aggregate: Aggregate
    limit: _LIMIT
    credit: Percent = Decimal("0")  # earned when the objective is missed
    above: _LIMIT | None = None
    probe: Id | None = None  # only this probe's samples (of each link that has it)

    @_rule
    def _above(self) -> None:
        if self.aggregate == "share_above" and self.above is None:
            raise ValueError(
                "share_above needs above: the value a sample must exceed to count, "
                "e.g. above: 150 with limit: 5 (at most 5 % of samples over 150)"
            )
        if self.aggregate != "share_above" and self.above is not None:
            raise ValueError(
                f"above applies only to aggregate share_above, not {self.aggregate}; drop it"
            )
        if self.aggregate == "share_above" and not 0 <= self.limit <= 100:
            raise ValueError(
                f"limit {self.limit} of share_above is a percent of samples; use 0 to 100"
            )

    @property
    def name(self) -> str:
        """How a person reads it: `jitter_ms p95`, `rtt_ms share above 150`."""
        what = f"share above {self.above}" if self.aggregate == "share_above" else self.aggregate
        on = f" of {self.probe}" if self.probe else ""
        return f"{self.metric} {what}{on}"


def metrics_of(probe: AnyProbe) -> tuple[str, ...]:
    """What `probe` stores with its available samples, as objectives name it."""
    found = STORED_METRICS.get(probe.kind, ())
    if isinstance(probe, HttpProbe):
        url = urlsplit(probe.url)
        skip = set() if url.scheme == "https" else {"tls_ms", "cert_days_left"}
        if _is_address(url.hostname or ""):
            skip.add("dns_ms")
        if not probe.follow_redirects:
            skip |= {"redirect_ms", "redirects"}
        found = tuple(m for m in found if m not in skip)
    return found


def _is_address(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def objective_probes(objective: MetricObjective, probes: Sequence[AnyProbe]) -> list[AnyProbe]:
    """The probes (measurements) among `probes` whose samples an objective is over."""
    return [
        p
        for p in probes
        if objective.metric in metrics_of(p)
        and (objective.probe is None or base_probe_id(p.id) == objective.probe)
    ]


def check_objectives(
    where: Path_,
    objectives: Sequence[MetricObjective],
    link_ids: Sequence[str],
    probes_of: Mapping[str, Sequence[AnyProbe]],
    owner: str = "the contract",
) -> Iterator[tuple[Path_, str]]:
    """Each objective names a metric that the probes of `link_ids` (or its `probe`)
    measure. `where` is the path of the objectives list; `owner` names the contract (a
    plan's objectives are checked for each contract of the plan). When a link is not in
    `probes_of` (unknown, or invalid: reported as that), nothing is judged."""
    known = [i for i in link_ids if i in probes_of]
    if len(known) < len(link_ids):
        return
    links = ", ".join(known)
    for index, objective in enumerate(objectives):
        path = (*where, index)
        probes = [p for i in known for p in probes_of[i]]
        if objective.probe is not None:
            named = [p for p in probes if base_probe_id(p.id) == objective.probe]
            if not named:
                ids = sorted({base_probe_id(p.id) for p in probes})
                yield (
                    (*path, "probe"),
                    f"no link of {owner} ({links}) has a probe {excerpt(objective.probe)}; "
                    f"their probes: {', '.join(ids) or 'none'}",
                )
                continue
            probes, by = named, f"probe {objective.probe} of {owner}'s links ({links})"
            they = "it measures" if len(named) == 1 else "they measure"
        else:
            by, they = f"the probes of {owner}'s links ({links})", "they measure"
        measured = sorted({m for p in probes for m in metrics_of(p)})
        if objective.metric not in measured:
            yield (
                (*path, "metric"),
                f"metric {excerpt(objective.metric)} is not measured by {by}; {they}: "
                f"{', '.join(measured) or 'nothing an objective can use'}",
            )


def check_contract_objectives(
    contracts: Sequence[tuple[int, Contract]],
    plans: Sequence[tuple[int, Plan]],
    links: Mapping[str, Link],
) -> Iterator[tuple[Path_, str]]:
    """`check_objectives` for every layer that sets objectives: a contract's own, its
    versions', and its plan's (judged for each contract of the plan, at the plan's path)."""
    probes_of = {link_id: link.probes for link_id, link in links.items()}
    plan_at = {plan.id: (index, plan) for index, plan in plans}
    for index, contract in contracts:
        path: Path_ = ("contracts", index)
        if contract.plan in plan_at:
            p_index, plan = plan_at[contract.plan]
            if plan.objectives:
                owner = f"contract {contract.id}"
                where: Path_ = ("plans", p_index, "objectives")
                yield from check_objectives(
                    where, plan.objectives, contract.links, probes_of, owner
                )
        if contract.objectives:
            yield from check_objectives(
                (*path, "objectives"), contract.objectives, contract.links, probes_of
            )
        for v_index, version in enumerate(contract.versions):
            if version.objectives:
                where = (*path, "versions", v_index, "objectives")
                yield from check_objectives(where, version.objectives, contract.links, probes_of)
