"""The API's own OpenAPI document: what it says of the whole API, and the one operation
that needs no token, the one serving the document at /api/v1/openapi.json.

`build` makes the document from the operations `portal.api.routes` lists (see
`portal.api.openapi`); it is built once, when the routes are added. Pure but for the
handler, which answers what was built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from kernel import __version__
from portal.api import openapi, schemas
from portal.api.endpoints import PREFIX, json_response
from portal.api.openapi import Operation
from portal.api.params import check_query
from portal.api.series import DAYS_AT_MOST, HOURS_AT_MOST

DOCUMENT: web.AppKey[dict[str, Any]] = web.AppKey("api_document")

DESCRIPTION = f"""\
Linkwatch's data for machines: links and their status, incidents, measurements,
availability against contracts, SLA reports, the credit ledger and maintenance.

Every operation but this document needs an API token (made on the portal's account
page), sent as `Authorization: Bearer lw_...`. A token sees exactly what its user sees on
the pages: a customer only their own links, contracts, reports, credits and the
maintenance that concerns them; ops, billing and admin every customer's. Anything
outside that scope answers 404 exactly as something that does not exist, and so does an
action the role may not take (approving and applying credits is for billing and admin).
A customer naming another customer in a `customer` filter gets 404, as on the pages.
The ledger (credits) is for billing, admin and the customer it concerns; ops get 404.
The sites (where links are measured from, their agents and canaries) are for ops and
admin; other roles get 404.

Lists come in pages: `limit` (1 to 500, default 100) items, in a fixed order, and a
`next_cursor` to pass as `cursor` for the next page (null on the last one). A cursor is
opaque, made only by the API, and belongs to its query: altered, made up, or used with
other filters, it is a 400.

Every parameter's schema states what it takes (patterns, minimums, maximums): a value
it refuses is a 400 whose message names the parameter, the value and what is allowed,
and a value it allows is read. What a schema cannot state is said in words where it
applies. A well-formed window that does not exist (a week 53 in a year of 52 weeks) or
has no report (it has not begun, or ended before anything was measured) is a 404 saying
why, not a 400; a time range that is empty or reversed holds nothing. Besides the
cursor's, only two rules join parameters, both of a series, and breaking one is a 400
that says so: `from` and `range` are not given together, and a series spans at most
{HOURS_AT_MOST} days of hours or {DAYS_AT_MOST} of days.

Errors are JSON, `{{"error": {{"status", "title", "message"}}}}`, whatever the status. An
unknown, repeated or empty query parameter is a 400. Request bodies are JSON objects of
at most 64 KiB. Times are RFC 3339: UTC in link data, the customer's offset in SLA
records; a time parameter takes one with its offset, or a date meaning its midnight
UTC, in the years 1970 to 9998. Percentages and money are decimal strings, never floats.
"""


OPENAPI = Operation(
    method="GET",
    path=f"{PREFIX}/openapi.json",
    operation_id="getOpenApi",
    summary="This API's OpenAPI document",
    description="The OpenAPI 3.1 document of every operation; needs no token.",
    response={"type": "object"},
    errors=(400,),
    secured=False,
)


async def openapi_document(request: web.Request) -> web.Response:
    check_query(request, OPENAPI)
    return json_response(request.app[DOCUMENT])


def route() -> web.RouteDef:
    return web.get(OPENAPI.path, openapi_document, allow_head=False)


def build(operations: Sequence[Operation]) -> dict[str, Any]:
    return openapi.document(
        operations,
        schemas.schemas(),
        title="Linkwatch API",
        version=__version__,
        description=DESCRIPTION,
    )
