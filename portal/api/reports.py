"""Availability against contracts: a link's over its contracts' windows
(/links/{link_id}/availability) and a window's SLA report (/reports/sla), as the records
`linkwatch report sla --format json` prints, with the ledger's status where billing has
a row.

A well-formed window with nothing to report is a 404 saying why (`unavailable`), never a
400. Reads through `PortalReads` only, for the customers `portal.api.access` allows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiohttp import web

from kernel.config import Contract
from portal.api.access import customer_scope, visible_link
from portal.api.endpoints import CUSTOMER, DATA, LINK_ID, PAGING, WINDOW, Body, endpoint, page
from portal.api.openapi import Param
from portal.api.params import required_window_label, window_label
from portal.api.schemas import ref
from portal.auth import Account
from portal.keys import CLOCK, LIVE, READS
from portal.middleware import PortalError
from sla.records import record
from sla.report import ContractWindow, WindowPlan, WindowUnavailable
from sla.windows import WindowKind


def unavailable(label: str, plans: Sequence[WindowPlan]) -> PortalError | None:
    """The 404 for a window with nothing to report for anyone asked about, saying why
    (as the monthly report page and `linkwatch report sla` do); None when there is. The
    label is well formed: it is the report that does not exist (yet), like a missing
    object, which a client must not take for a mistake in its request."""
    if any(plan.todo for plan in plans):
        return None
    for plan in plans:
        try:
            plan.check()
        except WindowUnavailable as exc:
            return PortalError(404, f"window={label!r} {exc.reason}")
    return None


@endpoint(
    "GET",
    "/links/{link_id}/availability",
    "getLinkAvailability",
    "The link's availability against each of its contracts",
    description="One SLA record per contract of the link. Without `window`, each contract "
    "over its own running window (a week, a month, a quarter or a year); with one, every "
    "contract over that window, `contractual` telling whether it is a window the contract "
    "pays credits on.",
    response=ref("Availability"),
    params=(LINK_ID, WINDOW),
    errors=(400, 404, *DATA),
)
async def link_availability(request: web.Request, user: Account) -> Body:
    link = visible_link(request, user)
    label = window_label(request)
    app = request.app
    config, now = app[LIVE].config, app[CLOCK]()
    contracts = list(app[LIVE].directory.contracts_of_link(link.id))
    found: list[ContractWindow] = []
    if label is None:
        by_kind: dict[WindowKind, list[Contract]] = {}
        for contract in contracts:
            terms = contract.terms_at(now, config.plans)
            if terms is not None:
                by_kind.setdefault(terms.window, []).append(contract)
        for kind, members in sorted(by_kind.items()):
            found += await app[READS].windows(members, kind, now)
    elif contracts:
        ids = tuple(sorted(c.id for c in contracts))
        plan, found = await app[READS].contract_windows(label, now, contract_ids=ids, any_kind=True)
        if (problem := unavailable(label, [plan])) is not None:
            raise problem
    order = {contract.id: i for i, contract in enumerate(contracts)}
    found = sorted(
        (item for item in found if link.id in item.subject.link_ids),
        key=lambda item: (order[item.contract.id], item.result.window.start),
    )
    items = []
    statuses: dict[str, Mapping[tuple[str, str], str]] = {}
    for item in found:
        window = item.result.window
        contractual = item.terms.window == window.kind
        status = None
        if contractual:
            # Where billing has a ledger row, its status (approved, applied) is the truth.
            if window.label not in statuses:
                statuses[window.label] = await app[READS].window_statuses(window.label)
            status = statuses[window.label].get((item.contract.id, item.subject.id))
        items.append({**record(item, now, status), "contractual": contractual})
    return {"link": link.id, "items": items}


@endpoint(
    "GET",
    "/reports/sla",
    "getSlaReport",
    "The SLA report of a window",
    description="Every contract measured in windows of the label's kind (weekly contracts "
    "for a week, monthly ones for a month), in contract and link order: the records "
    "`linkwatch report sla --format json` prints, the ledger's status where billing has "
    "a row.",
    response=ref("SlaRecordPage"),
    params=(
        Param("window", WINDOW.schema, WINDOW.description, required=True),
        CUSTOMER,
        *PAGING,
    ),
    errors=(400, 404, *DATA),
)
async def sla_report(request: web.Request, user: Account) -> Body:
    label = required_window_label(request)
    scope = customer_scope(request, user)
    app = request.app
    now = app[CLOCK]()
    found: list[ContractWindow] = []
    plans: list[WindowPlan] = []
    for customer in [None] if scope is None else sorted(scope):
        plan, results = await app[READS].contract_windows(
            label, now, customer=customer, monitored=True
        )
        plans.append(plan)
        found += results
    if (problem := unavailable(label, plans)) is not None:
        raise problem
    statuses = await app[READS].window_statuses(label) if found else {}
    records = sorted(
        (record(item, now, statuses.get((item.contract.id, item.subject.id))) for item in found),
        key=lambda r: (r["contract"], r["link"]),
    )
    return page(request, records, lambda r: (r["contract"], r["link"]), lambda r: r)
