"""Every read the portal's pages and API make, in one place: under the data timeout and
through the shared cache, each keyed by what it returns.

A handler asks `request.app[READS]` for data and turns it into a view; it never opens a
connection, starts a timeout or forms a cache key itself. Two handlers that show the same
data therefore share one read of it (the link page's budgets and the API's availability,
the board and the NOC). Past `data_timeout` a read raises `TimeoutError`, which the error
middleware answers with 503 and Retry-After. Tests may put any object with these methods
on the app instead.

Callers pass only what the viewer may already see: nothing here checks scope, and no key
names who asked (see `portal.cache`). Nothing here writes, formats for people, or reads
another package's tables with its own SQL: those reads are the owning package's functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from collector import Database, current_link_states, maintenance_windows
from collector.acknowledgements import Acknowledgement
from collector.acknowledgements import acknowledgements as outage_acknowledgements
from collector.agents import agents_seen
from collector.attributions import Attribution, recent_attributions
from collector.attributions import attributions as outage_attributions
from collector.incident_reports import IncidentReport, incident_reports
from collector.intervals import Interval
from collector.rollups import Bucket, Rollup, bucket_floor, rollups
from collector.series import LatestCheck, SampleBucket, latest_checks, sample_buckets
from collector.site_record import blind_spans_by_site
from collector.state_reads import (
    Incident,
    StateFailure,
    incidents,
    link_intervals,
    state_failures,
)
from collector.work_log import WorkEntry, work_entries
from kernel.config import Config, Contract, Customer, Link
from kernel.domain import LinkState, MaintenanceWindow
from notify import status as notification_status
from notify.status import DeliveryRow
from portal.cache import Cache
from portal.ledger_views import LedgerPage, Standing, ledger_page, standings
from portal.scope import LiveConfig
from portal.settings import PortalSettings
from portal.site_views import SiteReadings
from sla import compliance_reads, ledger_reads
from sla.compliance import WindowCount
from sla.ledger import (
    AuditEntry,
    AuditLine,
    LedgerFilter,
    LedgerRow,
    LedgerStatus,
    audit_log,
    audit_page,
    list_rows,
    window_statuses,
)
from sla.monthly import MonthEntry, monthly_report, report_months
from sla.operations import OperationsReport, operations_report
from sla.report import ContractWindow, WindowPlan, compute_plan, monitoring_began, plan_windows
from sla.windows import WindowKind, window_containing

T = TypeVar("T")

# What the board reads of each probe: its newest samples only, enough for its status (the
# confirmation rule needs `confirm` of them); when the status began comes from the stored
# intervals. With 10,000 links, reading an hour of samples each costs seconds.
BOARD_HISTORY = timedelta(0)
MAINTENANCE_BACK = timedelta(days=400)
MAINTENANCE_AHEAD = timedelta(days=730)
# Each site's blind spans shown: those open now or ended this far back, the newest few.
BLIND_SPANS_BACK = timedelta(days=7)
BLIND_SPANS_SHOWN = 5


class PortalReads:
    """The portal's reads of one database and config, shared by every request."""

    def __init__(
        self, settings: PortalSettings, db: Database, live: LiveConfig, cache: Cache
    ) -> None:
        self._settings = settings
        self._db = db
        self._live = live
        self._cache = cache

    async def _read(
        self,
        key: Hashable,
        load: Callable[[], Awaitable[T]],
        *,
        ttl_s: float | None = None,
        stale_s: float | None = None,
    ) -> T:
        """`load()` under the data timeout, through the cache under `key` (ttl and stale:
        the cache's own unless given)."""

        async def bounded() -> T:
            async with asyncio.timeout(self._settings.data_timeout.total_seconds()):
                return await load()

        return await self._cache.get(key, bounded, ttl_s=ttl_s, stale_s=stale_s)

    # --- freshness ---------------------------------------------------------------------

    def ledger_freshness(self) -> tuple[float, float]:
        """(ttl, stale) in seconds for anything read from the ledger: the daemon brings the
        running windows' rows up to date once per `notifications.evaluate_every`, and the
        cache must not add more than that period again on top (ttl + stale <= the period)."""
        period = self._live.config.notifications.evaluate_every.total_seconds()
        ttl = min(self._settings.cache_ttl.total_seconds(), period)
        return ttl, max(period - ttl, 0.0)

    def board_ttl(self, scope: str) -> float | None:
        """Every link's board costs CPU seconds at 10,000 links: staff boards are rebuilt
        as often as their pages refresh themselves (newer figures would not be seen
        anyway), customers' small boards as often as any cached figure. None: the cache's
        own ttl."""
        settings = self._settings
        if scope != "*" or settings.cache_ttl.total_seconds() <= 0:
            return None
        return max(settings.cache_ttl, settings.refresh).total_seconds()

    async def _ledger(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        ttl, stale = self.ledger_freshness()
        return await self._read(key, load, ttl_s=ttl, stale_s=stale)

    # --- link states and maintenance -----------------------------------------------------

    async def link_states(
        self, links: Sequence[Link], scope: str, now: datetime
    ) -> dict[str, LinkState]:
        """Current states of `links` by link id. `scope` names the set of links (the same
        name for the same set, whoever asks: `*` for every link)."""
        if not links:
            return {}

        async def load() -> dict[str, LinkState]:
            states = await current_link_states(self._db, links, now, history=BOARD_HISTORY)
            return {state.link_id: state for state in states}

        return await self._read(("link-states", scope), load, ttl_s=self.board_ttl(scope))

    async def active_maintenance(self, now: datetime) -> list[MaintenanceWindow]:
        """Windows in progress now, every customer's: callers match them to visible links."""

        async def load() -> list[MaintenanceWindow]:
            return await maintenance_windows(self._db, now, now + timedelta(seconds=1))

        return await self._read(("maintenance-now",), load)

    async def maintenance_around(self, now: datetime) -> list[MaintenanceWindow]:
        """Every maintenance window from a year back (the maintenance page's history) to two
        ahead, every customer's. The span is aligned to the UTC day, so that every page
        and link shares one read."""
        day = bucket_floor(now, "day")
        return await self.maintenance(day - MAINTENANCE_BACK, day + MAINTENANCE_AHEAD)

    async def maintenance(self, start: datetime, end: datetime) -> list[MaintenanceWindow]:
        """Every maintenance window overlapping [start, end), every customer's."""

        async def load() -> list[MaintenanceWindow]:
            return await maintenance_windows(self._db, start, end)

        return await self._read(("maintenance", start, end), load)

    # --- history of links ------------------------------------------------------------------

    async def incidents(self, link_id: str, start: datetime, end: datetime) -> list[Incident]:
        """The link's outages overlapping [start, end), oldest first."""

        async def load() -> list[Incident]:
            return await incidents(self._db, [link_id], start, end)

        return await self._read(("incidents", link_id, start, end), load)

    async def recent_incidents(self, link_id: str, days: int, now: datetime) -> list[Incident]:
        """The link's outages of the last `days` days, as read at most a ttl ago."""

        async def load() -> list[Incident]:
            return await incidents(self._db, [link_id], now - timedelta(days=days), now)

        return await self._read(("incidents-recent", link_id, days), load)

    async def incident_reports(
        self, scope: Hashable, since: datetime, link_ids: Sequence[str] | None
    ) -> list[IncidentReport]:
        """The incidents `collector.incident_reports` finds for `link_ids` (None: every
        link) since `since`, read once per ttl for `scope` (what the link ids stand for:
        a link, a customer, every link). `since` is the first asker's: whoever asks in
        the same period is answered from that read, which callers narrow to their own
        moment. A change made through the portal clears the cache, so it shows at once."""

        async def load() -> list[IncidentReport]:
            return await incident_reports(self._db, since=since, link_ids=link_ids)

        return await self._read(("incident-reports", scope), load)

    async def held_outages(
        self, held: frozenset[tuple[str, datetime]], now: datetime
    ) -> list[Incident]:
        """The stored outages (link, start) of `held`, with their ends, as read at most a
        ttl ago: what incidents hold, for every page that lists them."""

        async def load() -> list[Incident]:
            start = min(at for _, at in held)
            end = max(now, start + timedelta(microseconds=1))
            found = await incidents(self._db, sorted({link for link, _ in held}), start, end)
            return [i for i in found if (i.link_id, i.starts_at) in held]

        return await self._read(("held-outages", held), load)

    async def recent_intervals(
        self, link_id: str, start: datetime, now: datetime
    ) -> list[Interval]:
        """The link's stored intervals from `start` (a day's start, so that everyone asking
        the same day shares the key) up to `now`, as read at most a ttl ago."""

        async def load() -> list[Interval]:
            return (await link_intervals(self._db, [link_id], start, now))[link_id]

        return await self._read(("intervals-recent", link_id, start), load)

    async def intervals_of(
        self, link_ids: Sequence[str], start: datetime, now: datetime
    ) -> dict[str, list[Interval]]:
        """Several links' stored intervals from `start` (a day's start) up to `now`, in one
        read (the home page's 90-day bars), as read at most a ttl ago."""
        wanted = tuple(link_ids)
        if not wanted:
            return {}

        async def load() -> dict[str, list[Interval]]:
            return await link_intervals(self._db, wanted, start, now)

        return await self._read(("intervals-of", wanted, start), load)

    async def rollups(
        self,
        link_id: str,
        start: datetime,
        end: datetime,
        bucket: Bucket,
        *,
        probe_intervals: dict[tuple[str, str], timedelta] | None = None,
        now: datetime | None = None,
    ) -> list[Rollup]:
        """The link's rollups of `bucket` starting in [start, end); with `probe_intervals`
        and `now`, each with the samples it expected (see `collector.rollups`)."""

        async def load() -> list[Rollup]:
            return await rollups(
                self._db, [link_id], start, end, bucket, probe_intervals=probe_intervals, now=now
            )

        expected = probe_intervals is not None
        return await self._read(("rollups", link_id, bucket, start, end, expected), load)

    async def recent_rollups(
        self, link_id: str, start: datetime, now: datetime, bucket: Bucket
    ) -> list[Rollup]:
        """The link's rollups of `bucket` from `start` (a bucket's start, so that everyone
        asking within it shares the key) up to `now`, as read at most a ttl ago."""

        async def load() -> list[Rollup]:
            return await rollups(self._db, [link_id], start, now, bucket)

        return await self._read(("rollups-recent", link_id, bucket, start), load)

    async def recent_sample_buckets(
        self,
        link_id: str,
        probe_ids: Sequence[str],
        start: datetime,
        now: datetime,
        width: timedelta,
        origin: datetime,
    ) -> list[SampleBucket]:
        """Raw samples of some probes of the link per bucket of `width` aligned to
        `origin` (see `collector.series`), from `start` (a bucket's start) up to `now`, as
        read at most a ttl ago."""
        if not probe_ids:
            return []

        async def load() -> list[SampleBucket]:
            return await sample_buckets(self._db, link_id, probe_ids, start, now, width, origin)

        key = ("sample-buckets-recent", link_id, tuple(probe_ids), start, width, origin)
        return await self._read(key, load)

    async def latest_checks(
        self, link_id: str, probe_ids: Sequence[str], now: datetime
    ) -> list[LatestCheck]:
        """The newest sample of each of the link's HTTP probes `probe_ids`, as read at most
        a ttl ago."""
        if not probe_ids:
            return []

        async def load() -> list[LatestCheck]:
            return await latest_checks(self._db, link_id, probe_ids, now)

        return await self._read(("latest-checks", link_id, tuple(probe_ids)), load)

    # --- SLA figures -------------------------------------------------------------------------

    async def contract_windows(
        self,
        label: str,
        now: datetime,
        *,
        contract_ids: tuple[str, ...] | None = None,
        customer: str | None = None,
        any_kind: bool = False,
        monitored: bool = False,
    ) -> tuple[WindowPlan, list[ContractWindow]]:
        """The SLA results of window `label` (see `sla.report.plan_windows`), with the plan
        that says which contracts were left out and why. `monitored` leaves out windows
        that ended before a contract's links were first measured, as the ledger and
        `linkwatch report sla` do."""
        config = self._live.config

        async def load() -> tuple[WindowPlan, list[ContractWindow]]:
            began = None
            if monitored:
                chosen = [
                    c
                    for c in config.contracts
                    if customer in (None, c.customer)
                    and (contract_ids is None or c.id in contract_ids)
                ]
                links = list(dict.fromkeys(i for c in chosen for i in c.links))
                began = await monitoring_began(self._db, links)
            plan = plan_windows(
                config,
                label,
                now,
                customer_id=customer,
                contract_ids=contract_ids,
                any_kind=any_kind,
                monitored_from=began,
            )
            return plan, await compute_plan(self._db, config, plan, now)

        key = ("contract-windows", label, contract_ids, customer, any_kind, monitored)
        return await self._read(key, load)

    async def windows(
        self,
        contracts: Sequence[Contract],
        kind: WindowKind,
        now: datetime,
        *,
        previous: bool = False,
        contractual_only: bool = False,
    ) -> list[ContractWindow]:
        """Each contract measured over the `kind` window running at `now` (or the one
        before, with `previous`), in its customer's zone. With `contractual_only`, contracts
        measured in other windows are left out, so every credit shown is one the contract
        pays. In the order of `contracts`, then by subject."""
        config = self._live.config
        by_label: dict[str, list[str]] = {}
        for contract in contracts:
            tz = config.customer(contract.customer).tz
            window = window_containing(kind, tz, now)
            if previous:
                window = window.previous()
            by_label.setdefault(window.label, []).append(contract.id)
        found: list[ContractWindow] = []
        for label, ids in sorted(by_label.items()):
            _, results = await self.contract_windows(
                label, now, contract_ids=tuple(sorted(ids)), any_kind=not contractual_only
            )
            found += results
        order = {contract.id: i for i, contract in enumerate(contracts)}
        return sorted(found, key=lambda item: (order[item.contract.id], item.subject.id))

    async def report_months(self, customer: Customer, now: datetime, most: int) -> list[MonthEntry]:
        """The customer's report months, newest first (see `sla.monthly.report_months`)."""

        async def load() -> list[MonthEntry]:
            return await report_months(self._db, self._live.config, customer, now, most=most)

        return await self._ledger(("report-months", customer.id, most), load)

    async def monthly_report(
        self, customer_id: str, label: str, now: datetime, *, back_href: str | None = None
    ) -> str:
        """The customer's monthly report for `label`, as one HTML document."""

        async def load() -> str:
            config = self._live.config
            return await monthly_report(
                self._db, config, customer_id, label, now, back_href=back_href
            )

        return await self._read(("monthly-report", customer_id, label, back_href), load)

    # --- the ledger ----------------------------------------------------------------------

    async def window_statuses(self, label: str) -> dict[tuple[str, str], LedgerStatus]:
        """(contract id, subject id) -> ledger status of each window row of `label`."""

        async def load() -> dict[tuple[str, str], LedgerStatus]:
            return await window_statuses(self._db, label)

        return await self._ledger(("ledger-statuses", label), load)

    async def ledger_rows(
        self,
        *,
        window: str | None = None,
        customer: str | None = None,
        status: LedgerStatus | Sequence[LedgerStatus] | None = None,
        begun_by: datetime | None = None,
    ) -> list[LedgerRow]:
        """Ledger rows in the ledger's own order (see `sla.ledger.list_rows`)."""
        statuses = (
            (status,) if isinstance(status, str) else None if status is None else tuple(status)
        )

        async def load() -> list[LedgerRow]:
            return await list_rows(
                self._db, window=window, customer=customer, status=statuses, begun_by=begun_by
            )

        return await self._ledger(("ledger-rows", window, customer, statuses, begun_by), load)

    async def link_ledger(
        self, customer_id: str, pairs: Sequence[tuple[str, str]], windows: int
    ) -> list[LedgerRow]:
        """The newest `windows` rows of each (contract, subject) pair with their
        adjustments, newest window first (see `sla.ledger_reads.link_rows`)."""

        async def load() -> list[LedgerRow]:
            return await ledger_reads.link_rows(self._db, customer_id, pairs, windows)

        return await self._ledger(("ledger-link", customer_id, tuple(pairs), windows), load)

    async def locate_ledger_row(self, row_id: int) -> tuple[str, str] | None:
        """(window label, customer id) of a ledger row, None if there is none."""

        async def load() -> tuple[str, str] | None:
            return await ledger_reads.locate(self._db, row_id)

        return await self._ledger(("ledger-locate", row_id), load)

    async def standings(self, labels: tuple[str, ...], now: datetime) -> list[Standing]:
        """The ledger's standing of every window row of `labels`."""

        async def load() -> list[Standing]:
            return await standings(self._db, labels, now)

        return await self._ledger(("ledger-standings", labels), load)

    # The billing desk acts on what it shows: its reads are never answered from the cache,
    # only bounded by the data timeout.

    async def ledger_page(
        self, wanted: LedgerFilter, *, limit: int | None = 100, offset: int = 0
    ) -> LedgerPage:
        """One page of the ledger rows `wanted` matches, with the totals of them all."""

        async def load() -> LedgerPage:
            return await ledger_page(self._db, wanted, limit=limit, offset=offset)

        return await self._read(("ledger-page", wanted, limit, offset), load, ttl_s=0)

    async def audit_log(self, ledger_ids: Sequence[int]) -> list[AuditEntry]:
        """The audit trail of some ledger rows, oldest first."""

        async def load() -> list[AuditEntry]:
            return await audit_log(self._db, ledger_ids)

        return await self._read(("ledger-audit", tuple(ledger_ids)), load, ttl_s=0)

    async def audit_page(
        self,
        *,
        row: int | None,
        actor: str | None,
        action: str | None,
        window: str | None,
        customer: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[AuditLine]:
        """The audit trail's lines that match, newest first (see `sla.ledger.audit_page`)."""

        async def load() -> list[AuditLine]:
            return await audit_page(
                self._db,
                row=row,
                actor=actor,
                action=action,
                window=window,
                customer=customer,
                since=since,
                until=until,
                limit=limit,
            )

        key = ("ledger-audit-page", row, actor, action, window, customer, since, until, limit)
        return await self._read(key, load, ttl_s=0)

    # --- the monitor's own trouble ---------------------------------------------------------
    # The NOC dashboard reads these inside its rendered page, which is cached already: a
    # cache here too would keep a problem shown for up to twice as long after it cleared.

    async def failed_deliveries(self) -> int:
        """How many notification deliveries have failed."""

        async def load() -> int:
            return await notification_status.failed(self._db)

        return await self._read(("deliveries-failed",), load, ttl_s=0)

    async def delivery_counts(self) -> dict[str, int]:
        """Notification deliveries per status, every status a key."""

        async def load() -> dict[str, int]:
            return await notification_status.counts(self._db)

        return await self._read(("deliveries-counts",), load)

    async def recent_deliveries(
        self, statuses: Sequence[str] | None, limit: int
    ) -> list[DeliveryRow]:
        """The latest `limit` deliveries (by their last change) of `statuses` (None: all)."""
        wanted = None if statuses is None else tuple(statuses)

        async def load() -> list[DeliveryRow]:
            return await notification_status.recent(self._db, wanted, limit)

        return await self._read(("deliveries-recent", wanted, limit), load)

    async def state_failures(self) -> list[StateFailure]:
        """The probes whose intervals cannot be derived now, oldest failure first."""

        async def load() -> list[StateFailure]:
            return await state_failures(self._db)

        return await self._read(("state-failures",), load, ttl_s=0)

    async def sites(self, now: datetime) -> SiteReadings:
        """Every probe agent with how long ago it was last heard of, and per site its
        blind spans open now or ended within BLIND_SPANS_BACK (the newest
        BLIND_SPANS_SHOWN). Never answered stale: a lease runs out within a minute, and a
        dead agent must not show as live for the cache's stale period on top."""
        lease = self._live.config.collector.agent_lease

        async def load() -> SiteReadings:
            spans = await blind_spans_by_site(self._db, now - BLIND_SPANS_BACK, BLIND_SPANS_SHOWN)
            return SiteReadings(
                agents=tuple(await agents_seen(self._db, lease)),
                blind_spans={site: tuple(found) for site, found in spans.items()},
            )

        return await self._read(("sites", lease), load, stale_s=0)

    # --- the compliance rate -----------------------------------------------------------

    async def compliance_counts(self, customer: str | None, since: datetime) -> list[WindowCount]:
        """Every contract's ledger window counts of windows ending after `since` (of one
        customer, or every customer with None), as fresh as the ledger's other figures."""

        async def load() -> list[WindowCount]:
            return await compliance_reads.window_counts(self._db, since, customer)

        return await self._ledger(("compliance-counts", customer, since), load)

    async def attributions(
        self, link_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[Attribution]:
        """The links' outage attributions overlapping [start, end), withdrawn ones too,
        oldest first."""
        wanted = tuple(link_ids)

        async def load() -> list[Attribution]:
            return await outage_attributions(self._db, wanted, start, end)

        return await self._read(("attributions", wanted, start, end), load)

    async def acknowledgements(
        self, link_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[Acknowledgement]:
        """The acknowledgements of the links' outages that began in [start, end)."""
        wanted = tuple(link_ids)

        async def load() -> list[Acknowledgement]:
            return await outage_acknowledgements(self._db, wanted, start, end)

        return await self._read(("acknowledgements", wanted, start, end), load)

    async def operations_report(
        self, config: Config, month: str, now: datetime
    ) -> OperationsReport:
        """The operations report of `month` (TTA and TTR), as read at most a ttl ago."""

        async def load() -> OperationsReport:
            return await operations_report(self._db, config, month, now)

        return await self._read(("operations-report", month), load)

    async def attribution_trail(
        self,
        link_ids: Sequence[str] | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[Attribution]:
        """Attributions made or withdrawn in [since, until), newest first (the audit
        trail's part about them); `link_ids` None: every link."""
        wanted = None if link_ids is None else tuple(link_ids)

        async def load() -> list[Attribution]:
            return await recent_attributions(
                self._db, link_ids=wanted, since=since, until=until, limit=limit
            )

        return await self._read(("attribution-trail", wanted, since, until, limit), load)

    async def work_trail(
        self,
        customer_id: str | None,
        link_ids: Sequence[str] | None,
        since: datetime | None,
        until: datetime | None,
        actor: str | None,
        limit: int,
        subject: str | None = None,
    ) -> list[WorkEntry]:
        """The operations trail in [since, until), newest first: everything, or what
        concerns one customer (`customer_id` with its `link_ids`)."""
        links = None if customer_id is None else tuple(link_ids or ())
        customers = None if customer_id is None else (customer_id,)

        async def load() -> list[WorkEntry]:
            return await work_entries(
                self._db,
                since=since,
                until=until,
                subject=subject,
                actor=actor,
                link_ids=links,
                customer_ids=customers,
                limit=limit,
            )

        key = ("work-trail", customer_id, links, since, until, actor, limit, subject)
        return await self._read(key, load)
