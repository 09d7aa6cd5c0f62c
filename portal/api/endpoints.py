"""Declaring an operation of the API, and what every operation does alike, so that a
handler only checks who may see what, reads and assembles.

`endpoint` turns a handler, which receives the token's user and returns the JSON body of
its 200 answer, into an `Endpoint`: the declared `Operation` (for the OpenAPI document)
and the aiohttp handler that answers 401 to a request without a valid token and 400 to a
query the operation does not declare, before the handler runs, and writes its answer as
JSON. Declaring routes nothing: `portal.api.routes` lists the endpoints and adds them.

Also here: the parameters several operations declare alike, and `page`, one page of a
list in its fixed order. Nothing here reads the database or decides who may see what.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar

from aiohttp import web

from portal.api import openapi
from portal.api.openapi import Operation, Param
from portal.api.params import DEFAULT_LIMIT, MAX_LIMIT, Cursors, Key, check_query, paginate
from portal.api.patterns import CURSOR, ID_PATTERN, MOMENT, WINDOW_PATTERN, YEARS
from portal.auth import Account, Viewer
from portal.keys import VIEWER

PREFIX = "/api/v1"

CURSORS = web.AppKey("api_cursors", Cursors)
OPERATION = web.RequestKey("api_operation", Operation)

T = TypeVar("T")
Body = dict[str, Any]
Handler = Callable[[web.Request, Account], Awaitable[Body]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A declared operation and the aiohttp handler that answers it."""

    operation: Operation
    answer: Callable[[web.Request], Awaitable[web.Response]]

    def route(self) -> web.RouteDef:
        return web.route(self.operation.method, self.operation.path, self.answer)


def require_token(request: web.Request) -> Viewer:
    viewer = request[VIEWER]
    if viewer is None:
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="linkwatch"'})
    return viewer


def endpoint(
    method: Literal["GET", "POST"],
    path: str,
    operation_id: str,
    summary: str,
    *,
    response: openapi.JsonSchema,
    description: str = "",
    params: tuple[Param, ...] = (),
    errors: tuple[int, ...] = (),
    body: openapi.JsonSchema | None = None,
    body_required: bool = False,
) -> Callable[[Handler], Endpoint]:
    """Declare an operation that needs a token, answered by the decorated handler, which
    receives the token's user and returns the JSON body of its 200 answer."""
    operation = Operation(
        method=method,
        path=PREFIX + path,
        operation_id=operation_id,
        summary=summary,
        description=description or summary + ".",
        response=response,
        params=params,
        errors=errors,
        body=body,
        body_required=body_required,
    )

    def declare(handler: Handler) -> Endpoint:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.Response:
            user = require_token(request).user
            check_query(request, operation)
            request[OPERATION] = operation
            return json_response(await handler(request, user))

        return Endpoint(operation, run)

    return declare


def _json_default(value: object) -> object:
    # As `linkwatch report sla --format json` writes them: seconds are numbers.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


# NaN and infinities are not JSON: measurements are made finite before they get here.
_dumps = functools.partial(json.dumps, default=_json_default, allow_nan=False)


def json_response(body: Body) -> web.Response:
    return web.json_response(body, dumps=_dumps)


# --- parameters several operations declare -----------------------------------------------

LIMIT = Param(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    "How many items a page holds.",
)
PAGE_CURSOR = Param(
    "cursor",
    CURSOR,
    "The previous page's `next_cursor`, unchanged, with the same other parameters (`limit` "
    "may change); leave it out for the first page. Only the API makes cursors: one it did "
    "not give for this query is a 400.",
)
PAGING = (LIMIT, PAGE_CURSOR)
ID: openapi.JsonSchema = {
    "type": "string",
    "pattern": ID_PATTERN,
    "description": "An id: 1 to 63 lower-case letters, digits, '.', '_' or '-', starting "
    "with a letter or digit.",
}
CUSTOMER = Param(
    "customer",
    ID,
    "Only this customer's. A customer may name only themselves: any other customer "
    "answers 404, as one that does not exist.",
)
LINK_ID = Param("link_id", ID, "The link's id.", where="path")
WINDOW = Param(
    "window",
    {"type": "string", "pattern": WINDOW_PATTERN},
    f"A window label, in each contract's own time zone: an ISO week (2026-W47; W01 to W53), "
    f"a calendar month (2026-11), a quarter (2026-Q3) or a year (2026), in the years "
    f"{YEARS}. Week 53 exists only in the years "
    "that have one (2020, 2026, 2032, ...): in another year it names no window, a 404.",
)
FROM = Param("from", MOMENT, "The start of the range: a time with its offset, or a date (UTC).")
TO = Param(
    "to",
    MOMENT,
    "The end of the range, exclusive: a time with its offset, or a date (UTC). A `to` at "
    "or before `from` leaves nothing in the range.",
)
DATA = (503,)  # every operation that reads the database may find it away


# --- pages -------------------------------------------------------------------------------


def page(
    request: web.Request,
    items: Sequence[T],
    key: Callable[[T], Key],
    render: Callable[[T], Body],
    *,
    descending: bool = False,
) -> Body:
    chosen, cursor = paginate(
        request, request[OPERATION], request.app[CURSORS], items, key, descending=descending
    )
    return {"items": [render(item) for item in chosen], "next_cursor": cursor}
