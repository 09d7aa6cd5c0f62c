"""Contracts and the terms in force now (/contracts), from the live config.

A customer sees only their own contracts, staff every customer's (or the one they name).
Reads nothing from the database.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from kernel.config import Config, Contract, ResolvedTerms
from portal.api.access import customer_filter
from portal.api.endpoints import CUSTOMER, PAGING, Body, endpoint, page
from portal.api.formats import decimal_str, iso
from portal.api.schemas import ref
from portal.auth import Account
from portal.keys import CLOCK, LIVE


def _terms(terms: ResolvedTerms) -> Body:
    credit = terms.credit
    rule = credit.incidents
    return {
        "target_pct": decimal_str(terms.target),
        "window": terms.window,
        "fee": decimal_str(terms.fee),
        "currency": terms.currency,
        "credit": {
            "step_pct": decimal_str(credit.step),
            "per_step_pct": decimal_str(credit.per_step),
            "rounding": credit.rounding,
            "cap_pct": decimal_str(credit.cap),
            "bands": [
                {"below_pct": decimal_str(b.below), "credit_pct": decimal_str(b.credit)}
                for b in credit.bands
            ],
            "incidents": None
            if rule is None
            else {
                "count": rule.count,
                "min_duration_s": rule.min_duration.total_seconds(),
                "credit_pct": decimal_str(rule.credit),
            },
        },
        "minimum_credit": decimal_str(terms.minimum_credit),
        "unknown": terms.unknown,
        "maintenance_notice_s": terms.maintenance_notice.total_seconds(),
        "grace_s": terms.grace.total_seconds(),
        "budget_warnings_pct": list(terms.budget_warnings),
        "latency": None
        if terms.latency is None
        else {
            "p95_ms": terms.latency.p95_ms,
            "mean_ms": terms.latency.mean_ms,
            "credit_pct": decimal_str(terms.latency.credit),
        },
        "loss": None
        if terms.loss is None
        else {"max_pct": terms.loss.max_pct, "credit_pct": decimal_str(terms.loss.credit)},
        "customer_caused": terms.customer_caused,
        "availability_decimals": terms.availability_decimals,
    }


def _contract(config: Config, contract: Contract, now: datetime) -> Body:
    terms = contract.terms_at(now, config.plans)
    return {
        "id": contract.id,
        "customer": contract.customer,
        "links": list(contract.links),
        "group": contract.group,
        "plan": contract.plan,
        "effective_from": iso(contract.effective_from),
        "terms": None if terms is None else _terms(terms),
    }


@endpoint(
    "GET",
    "/contracts",
    "listContracts",
    "Contracts and their terms in force now",
    description="The caller's contracts in id order.",
    response=ref("ContractPage"),
    params=(CUSTOMER, *PAGING),
    errors=(400, 404),
)
async def list_contracts(request: web.Request, user: Account) -> Body:
    customer = customer_filter(request, user)
    config, now = request.app[LIVE].config, request.app[CLOCK]()
    found = request.app[LIVE].directory.visible_contracts(user, customer_id=customer)
    found.sort(key=lambda c: c.id)
    return page(request, found, lambda c: (c.id,), lambda c: _contract(config, c, now))
