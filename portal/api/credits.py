"""The credit ledger (/credits): its rows, one row, and the billing desk's two steps on a
row, approve and apply.

The ledger is for billing and admin, and for each customer their own credits: any
other role, and a row the caller may not see, gets the 404 of a row that does not
exist. Rows are read through `PortalReads`; approving and applying write through
`sla.ledger`, whose rules decide (a refusal is a 409, and nothing changes), and then
empty the pages' cache so that reports show the new status at once.
"""

from __future__ import annotations

from collections.abc import Awaitable

from aiohttp import web

from portal.api.access import customer_scope
from portal.api.endpoints import CUSTOMER, DATA, PAGING, WINDOW, Body, endpoint, page
from portal.api.formats import micros
from portal.api.openapi import Param
from portal.api.params import Key, json_object, one_of, text_field, window_label
from portal.api.patterns import PERSON_TEXT_PATTERN
from portal.api.schemas import ref
from portal.auth import Account
from portal.keys import CACHE, CLOCK, DATABASE, LIVE, READS
from portal.middleware import PortalError
from portal.scope import can
from sla.ledger import MAX_NOTE_CHARS, STATUSES, LedgerError, LedgerRow, apply, approve

MAX_INVOICE_REF_CHARS = 200
CREDIT_ID = Param(
    "credit_id", {"type": "integer", "minimum": 1}, "The ledger row's id.", where="path"
)
LEDGER_STATUS = Param(
    "status", {"type": "string", "enum": list(STATUSES)}, "Only rows in this status."
)


def _ledger_key(row: LedgerRow) -> Key:
    # The ledger's own order: window, contract, subject, then an adjustment after its row.
    return (micros(row.window_start), row.contract_id, row.subject_id, row.id)


def _require_ledger(user: Account) -> None:
    """The ledger is the billing desk's, and each customer's for their own credits; for
    anyone else it is as absent as a page their role does not have."""
    if not (can(user, "ledger") or (user.role == "customer" and user.customer is not None)):
        raise web.HTTPNotFound()


@endpoint(
    "GET",
    "/credits",
    "listCredits",
    "Ledger rows: credits by contract and window",
    description="The caller's ledger rows in window, contract and link order, an "
    "adjustment after the row it adjusts. For billing and admin (every customer) and for "
    "customers (their own); other roles get 404.",
    response=ref("CreditPage"),
    params=(WINDOW, CUSTOMER, LEDGER_STATUS, *PAGING),
    errors=(400, 404, *DATA),
)
async def list_credits(request: web.Request, user: Account) -> Body:
    _require_ledger(user)
    label = window_label(request)
    status = one_of(request, "status", STATUSES)
    scope = customer_scope(request, user)
    reads = request.app[READS]
    statuses = None if status is None else [s for s in STATUSES if s == status]  # typed
    rows: list[LedgerRow] = []
    if scope is None:
        rows = list(await reads.ledger_rows(window=label, status=statuses))
    for customer in sorted(scope or ()):
        rows += await reads.ledger_rows(window=label, customer=customer, status=statuses)
    rows.sort(key=_ledger_key)
    return page(request, rows, _ledger_key, LedgerRow.record)


async def _visible_credit(request: web.Request, user: Account) -> LedgerRow:
    """The ledger row of the path, or the same 404 for a missing one and one the caller
    may not see."""
    _require_ledger(user)
    text = request.match_info["credit_id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise web.HTTPNotFound()
    wanted = int(text)
    reads = request.app[READS]
    located = await reads.locate_ledger_row(wanted)
    if located is None or not request.app[LIVE].directory.may_see_customer(user, located[1]):
        raise web.HTTPNotFound()
    # The ledger reads rows by window and customer; one such read holds this row.
    rows = await reads.ledger_rows(window=located[0], customer=located[1])
    row = next((r for r in rows if r.id == wanted), None)
    if row is None:
        raise web.HTTPNotFound()
    return row


@endpoint(
    "GET",
    "/credits/{credit_id}",
    "getCredit",
    "One ledger row",
    response=ref("Credit"),
    params=(CREDIT_ID,),
    errors=(404, *DATA),
)
async def get_credit(request: web.Request, user: Account) -> Body:
    return (await _visible_credit(request, user)).record()


async def _settleable(request: web.Request, user: Account) -> LedgerRow:
    # Only billing and admin settle; for anyone else the row is as absent as a missing one.
    if not can(user, "settle"):
        raise web.HTTPNotFound()
    return await _visible_credit(request, user)


async def _settled(request: web.Request, step: Awaitable[list[LedgerRow]]) -> Body:
    # No deadline here: a write cut short could commit after its caller was told 503.
    try:
        settled = await step
    except LedgerError as exc:
        raise PortalError(409, str(exc)) from None
    request.app[CACHE].clear()  # reports show the ledger's status: show the new one now
    return settled[0].record()


SETTLE_ERRORS = (400, 404, 409, 413, 415, *DATA)


@endpoint(
    "POST",
    "/credits/{credit_id}/approve",
    "approveCredit",
    "Approve a closed ledger row",
    description="closed -> approved, by the token's user. For billing and admin; others "
    "get 404. A row that is not closed, or one flagged for review (`needs_review`) "
    "approved without a note, is a 409 and nothing changes. The body, if any, is a JSON "
    "object with the approver's `note`.",
    response=ref("Credit"),
    params=(CREDIT_ID,),
    errors=SETTLE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "note": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_NOTE_CHARS,
                "pattern": PERSON_TEXT_PATTERN,
                "description": "What the approver checked (not only white space; no NUL "
                "character); required for a row flagged for review, kept on the row and in "
                "its audit trail.",
            }
        },
    },
)
async def approve_credit(request: web.Request, user: Account) -> Body:
    row = await _settleable(request, user)
    body = await json_object(request, fields=("note",))
    note = text_field(body, "note", most=MAX_NOTE_CHARS) if "note" in body else None
    app = request.app
    step = approve(app[DATABASE], [row.id], user.name, app[CLOCK](), note)
    return await _settled(request, step)


@endpoint(
    "POST",
    "/credits/{credit_id}/apply",
    "applyCredit",
    "Apply an approved ledger row to an invoice",
    description="approved -> applied with the invoice's reference, by the token's user. "
    "For billing and admin; others get 404. A row that is not approved is a 409 and "
    "nothing changes.",
    response=ref("Credit"),
    params=(CREDIT_ID,),
    errors=SETTLE_ERRORS,
    body={
        "type": "object",
        "additionalProperties": False,
        "required": ["invoice_ref"],
        "properties": {
            "invoice_ref": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_INVOICE_REF_CHARS,
                "pattern": PERSON_TEXT_PATTERN,
                "description": "The invoice the credit was applied to (not only white "
                "space; no NUL character).",
            }
        },
    },
    body_required=True,
)
async def apply_credit(request: web.Request, user: Account) -> Body:
    row = await _settleable(request, user)
    body = await json_object(request, fields=("invoice_ref",))
    invoice = text_field(body, "invoice_ref", most=MAX_INVOICE_REF_CHARS)
    app = request.app
    step = apply(app[DATABASE], [row.id], user.name, invoice, app[CLOCK]())
    return await _settled(request, step)
