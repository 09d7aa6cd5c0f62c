"""Contracts, plans and their versions: the terms an SLA is measured and credited by.

A contract's terms resolve through its plan and versions (`terms_at`); the rules that
need them resolved (every term set, a fee in its currency's minor units, one version per
moment) are `_check_terms`, run on the contracts that validate on their own, so that a
mistake elsewhere in the file does not hide them. Nothing here computes a credit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError

from kernel.config.fields import (
    Amount,
    AwareDatetime,
    Duration,
    Id,
    Percent,
    PositivePercent,
    _rule,
    _Strict,
)
from kernel.config.hours import CoveredHours, Holiday
from kernel.config.notifications import Template
from kernel.config.objectives import MetricObjective
from kernel.config.quality import AvailabilityTerms
from kernel.config.raw import Path_, _mappings
from kernel.formatting import (
    DEFAULT_AVAILABILITY_DECIMALS,
    MAX_AVAILABILITY_DECIMALS,
    excerpt,
)
from kernel.money import minor_units


class CreditBand(_Strict):
    """Availability below `below` percent earns `credit` percent of the fee."""

    below: PositivePercent
    credit: Percent


class IncidentCredit(_Strict):
    """`count` or more outages of at least `min_duration` in a window earn `credit` %."""

    count: int = Field(ge=1, le=10_000)
    min_duration: Duration
    credit: Percent


class CreditTerms(_Strict):
    step: PositivePercent = Decimal("0.5")
    per_step: Percent = Decimal("0")
    rounding: Literal["ceil", "floor"] = "ceil"
    cap: Percent = Decimal("100")
    bands: list[CreditBand] = Field(default_factory=list)
    incidents: IncidentCredit | None = None
    # The credits of the windows starting in one calendar year never exceed this percent
    # of the year's fees (sla/annual_cap.py); None: no annual cap.
    annual_cap_pct: Percent | None = None


class LatencyObjective(_Strict):
    """Round-trip time over the window's available time, met when at or under the limit.
    Measured on the network's round trips (ICMP, TCP), not on HTTP response times."""

    p95_ms: float | None = Field(default=None, gt=0)
    mean_ms: float | None = Field(default=None, gt=0)
    credit: Percent = Decimal("0")  # earned when the objective is missed

    @_rule
    def _some_limit(self) -> None:
        if self.p95_ms is None and self.mean_ms is None:
            raise ValueError("give p95_ms, mean_ms or both")


class LossObjective(_Strict):
    """Mean packet loss over the window's available time, met when at or under max_pct."""

    max_pct: float = Field(ge=0, le=100)
    credit: Percent = Decimal("0")


class RestoreTerms(_Strict):
    """Time to restore: each outage is restored within `within`; every started
    `credit_per` beyond it earns `credit_pct` % of the window's fee, at most `cap_pct` %
    per window (before the overall cap). Operations are warned when an outage reaches
    `warn_at_pct` % of `within`. The clock pauses over time the contract excludes."""

    within: Duration
    credit_per: Duration = timedelta(hours=1)
    credit_pct: PositivePercent
    cap_pct: PositivePercent = Decimal("100")
    warn_at_pct: PositivePercent = Decimal("80")

    @_rule
    def _warned_before_the_deadline(self) -> None:
        if self.warn_at_pct >= 100:
            raise ValueError(
                f"warn_at_pct {self.warn_at_pct.normalize():f} warns no earlier than the "
                "deadline itself (restore-overdue); use a share above 0 and under 100"
            )

    @_rule
    def _cap_allows_a_unit(self) -> None:
        if self.cap_pct < self.credit_pct:
            raise ValueError(
                f"cap_pct {self.cap_pct.normalize():f} is under credit_pct "
                f"{self.credit_pct.normalize():f}, so not even one unit could be credited; "
                "use a cap_pct of at least credit_pct"
            )


class AcknowledgeTerms(_Strict):
    """Time to acknowledge: operations acknowledge each outage within `within` of its
    confirmed start. An objective the operations report measures; it earns no credit."""

    within: Duration


def _decimals(value: object) -> int:
    """`availability_decimals`: a whole number the ledger's four decimals can fill."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"{excerpt(value)} is not a number of decimals; use a whole number from 0 to "
            f"{MAX_AVAILABILITY_DECIMALS}"
        )
    if not 0 <= value <= MAX_AVAILABILITY_DECIMALS:
        raise ValueError(
            f"{value} is not allowed; use a whole number from 0 to {MAX_AVAILABILITY_DECIMALS} "
            f"(availability is kept to {MAX_AVAILABILITY_DECIMALS} decimals)"
        )
    return value


class Terms(_Strict):
    """Terms a plan, a contract or a contract version may set. Unset fields come from the
    layer below: built-in defaults <- plan <- contract <- version in force."""

    target: PositivePercent | None = None  # 100: no down time allowed (a budget of 0)
    window: Literal["week", "month", "quarter", "year"] | None = None
    fee: Amount | None = None  # per window
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    credit: CreditTerms | None = None
    minimum_credit: Amount | None = None
    unknown: Literal["exclude", "count_as_up", "count_as_down"] | None = None
    maintenance_notice: Duration | None = None
    grace: Duration | None = None  # after a window ends, before its ledger row closes
    budget_warnings: list[Annotated[int, Field(gt=0, le=100)]] | None = None
    latency: LatencyObjective | None = None
    loss: LossObjective | None = None
    breach_notice: Template | None = None  # the customer's message when a window is missed
    # Coverage (percent) under which a window gets no automatic credit: a person reviews it.
    min_coverage: Percent | None = None
    restore: RestoreTerms | None = None  # time to restore; None: no such term
    acknowledge: AcknowledgeTerms | None = None  # time-to-acknowledge objective
    # Covered hours (kernel/config/hours.py): only these count; None measures every hour.
    hours: CoveredHours | None = None
    holidays: list[Holiday] | None = None  # dates in the contract's zone
    # Outage time staff attributed to the customer: excluded like announced maintenance
    # (what SLAs commonly say), or counted like any other outage.
    customer_caused: Literal["exclude", "count"] | None = None
    # Slots of poor quality (loss, RTT over a limit) count as unavailable (kernel.config.quality).
    availability: AvailabilityTerms | None = None
    # Objectives on any stored metric (kernel.config.objectives); a version's list replaces
    # the plan's or contract's whole.
    objectives: list[MetricObjective] | None = Field(default=None, max_length=50)
    # Decimals of the availability people read (pages, reports, e-mails), truncated; the
    # engine and the ledger keep four, so no display can honestly show more.
    availability_decimals: Annotated[int, BeforeValidator(_decimals)] | None = None


class ResolvedTerms(_Strict):
    """Every term set, as they apply to one window."""

    target: PositivePercent
    window: Literal["week", "month", "quarter", "year"] = "month"
    fee: Decimal = Decimal("0")
    currency: str = "EUR"
    credit: CreditTerms = CreditTerms()
    minimum_credit: Decimal = Decimal("0")
    unknown: Literal["exclude", "count_as_up", "count_as_down"] = "exclude"
    maintenance_notice: timedelta = timedelta(hours=72)
    grace: timedelta = timedelta(days=2)
    budget_warnings: list[int] = Field(default_factory=lambda: [50, 80, 100])
    latency: LatencyObjective | None = None
    loss: LossObjective | None = None
    breach_notice: str | None = None
    min_coverage: Decimal | None = None
    restore: RestoreTerms | None = None
    acknowledge: AcknowledgeTerms | None = None
    hours: CoveredHours | None = None
    holidays: list[Holiday] = Field(default_factory=list)
    customer_caused: Literal["exclude", "count"] = "exclude"
    availability: AvailabilityTerms | None = None
    objectives: list[MetricObjective] = Field(default_factory=list)
    availability_decimals: int = DEFAULT_AVAILABILITY_DECIMALS


class Plan(Terms):
    """A reusable SLA template that contracts name and override only where they differ."""

    id: Id


class ContractVersion(Terms):
    """Changed terms from `effective_from` on (until a later version)."""

    effective_from: AwareDatetime


class Contract(Terms):
    id: Id
    customer: Id
    links: list[Id] = Field(min_length=1)
    plan: Id | None = None
    # redundant: the links form one service, down only while all of them are down.
    group: Literal["none", "redundant"] = "none"
    effective_from: AwareDatetime | None = None  # the contract's start; None: always
    versions: list[ContractVersion] = Field(default_factory=list)

    def terms_at(self, moment: datetime, plans: Sequence[Plan]) -> ResolvedTerms | None:
        """The terms in force at `moment`, or None before the contract starts."""
        if self.effective_from is not None and moment < self.effective_from:
            return None
        # The terms resolved so far are kept, by how many versions are in force (those in
        # force at a moment are always the earliest ones): every page and window asks for
        # them, 10,000 contracts at a time, and merging and validating the layers is what
        # costs. Kept in the instance's __dict__ beside its fields, as functools'
        # cached_property keeps a value, so that pydantic's equality ignores them; marked
        # with the instance's id, so that a copy (which shares the dict) makes its own.
        kept: tuple[int, dict[int, tuple[Sequence[Plan], ResolvedTerms]]] | None
        kept = self.__dict__.get(_RESOLVED)
        if kept is None or kept[0] != id(self):
            kept = (id(self), {})
            self.__dict__[_RESOLVED] = kept
        in_force = sum(1 for v in self.versions if v.effective_from <= moment)
        found = kept[1].get(in_force)
        if found is not None and found[0] is plans:
            return found[1]
        layers: list[Terms] = [p for p in plans if p.id == self.plan]
        layers.append(self)
        versions = sorted(
            (v for v in self.versions if v.effective_from <= moment), key=_effective_from
        )
        layers += versions
        merged: dict[str, Any] = {}
        for layer in layers:
            _merge(merged, layer.model_dump(include=_TERM_FIELDS, exclude_unset=True))
        terms = ResolvedTerms.model_validate(merged)
        kept[1][in_force] = (plans, terms)
        return terms


_TERM_FIELDS = set(Terms.model_fields)
_RESOLVED = "_terms_resolved"  # not a field: see Contract.terms_at


def _effective_from(version: ContractVersion) -> datetime:
    return version.effective_from


# Terms a layer replaces whole: a schedule is read as one (a version's `hours` is the
# whole week, not days added to the plan's).
_WHOLE_TERMS = frozenset({"hours"})


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """Field by field, nested sections too: a layer changes only what it sets."""
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key not in _WHOLE_TERMS:
            _merge(into[key], value)
        else:
            into[key] = value


def _valid_contracts(data: Mapping[str, Any]) -> tuple[list[tuple[int, Contract]], list[Plan]]:
    """The contracts (with their index) and plans of `data` that validate on their own;
    a contract whose plan does not is left out, since its terms cannot be resolved."""
    plans: list[Plan] = []
    broken_plans: set[object] = set()
    for _, raw in _mappings(data.get("plans")):
        try:
            plans.append(Plan.model_validate(raw))
        except ValidationError:
            broken_plans.add(raw.get("id"))
    contracts: list[tuple[int, Contract]] = []
    for index, raw in _mappings(data.get("contracts")):
        if raw.get("plan") in broken_plans:
            continue
        try:
            contracts.append((index, Contract.model_validate(raw)))
        except ValidationError:
            continue
    return contracts, plans


def _check_terms(
    contracts: Sequence[tuple[int, Contract]], plans: Sequence[Plan]
) -> Iterator[tuple[Path_, str]]:
    """Rules that need a contract's terms resolved through its plan and versions."""
    for index, contract in contracts:
        path: Path_ = ("contracts", index)
        starts = [(contract.effective_from, path)] + [
            (v.effective_from, (*path, "versions", i)) for i, v in enumerate(contract.versions)
        ]
        for moment, where in starts:
            try:
                terms = contract.terms_at(moment or datetime.min.replace(tzinfo=UTC), plans)
            except ValidationError as exc:
                yield from _unresolved(where, exc)
                break  # the versions after it would say the same again
            if terms is None:
                continue
            places = minor_units(terms.currency)
            if terms.fee != terms.fee.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN):
                yield (
                    (*where, "fee"),
                    f"fee {terms.fee} has more decimals than {terms.currency} allows ({places})",
                )
        dates = [v.effective_from for v in contract.versions]
        if len(set(dates)) != len(dates):
            yield (*path, "versions"), "two versions take effect at the same time"


def _unresolved(where: Path_, exc: ValidationError) -> Iterator[tuple[Path_, str]]:
    """Why a contract's terms do not resolve: every term has a value in the end, so a
    term no layer sets (target) or one set to null (fee: ~) is a mistake."""
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == "missing" and loc == ("target",):
            yield where, "no target; set target (percent) or name a plan that has one"
        elif error["input"] is None and loc:
            name = ".".join(str(part) for part in loc)
            yield (
                (*where, *loc),
                f"{name} is null; give a value, or leave {name} out to take the plan's "
                "(or the default)",
            )
        else:
            yield (*where, *loc), f"{excerpt(error['input'])}: {error['msg']}"
