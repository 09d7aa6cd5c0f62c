"""The JSON API's OpenAPI 3.1 document, made from the operations the API declares.

Each endpoint is declared once, beside its handler, as an `Operation`: method and path,
parameters, the schema of its answer, its request body and the errors it gives. The
router is built from the same declarations (`portal.api.routes`) and every request's
query is checked against them (`portal.api.endpoints.endpoint`), so the document cannot
describe a route that does not exist, leave out one that does, or miss a parameter a
handler reads.

Pure data: this module does no I/O and knows nothing of aiohttp or of the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

JsonSchema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
SECURITY_SCHEME = "token"

# What each error status means anywhere in the API; an operation lists the ones it gives.
ERRORS: Mapping[int, str] = {
    400: "A query parameter, path or body is not acceptable: outside what its schema "
    "allows, or against a rule joining parameters that the operation states in words (a "
    "cursor given with other filters, a series too long). The message names the "
    "parameter, the value given and what is allowed.",
    401: "No API token, or one that is unknown, revoked or expired, or whose user is disabled.",
    404: "No such object, or one outside the caller's scope: the two answer alike, so "
    "nobody learns what other customers have. A well-formed window label that names no "
    "window, or a window with no report (not begun, or ended before anything was "
    "measured), is a 404 too; the message says why.",
    409: "The ledger refuses the step (a row out of order, already settled); the message "
    "says why. Nothing was changed.",
    413: "The request body is larger than the portal accepts (64 KiB by default).",
    415: "The request body is not application/json.",
    503: "The data could not be read in time (the database is away or slow); retry after "
    "the Retry-After header's seconds.",
}

ERROR_SCHEMA: JsonSchema = {
    "type": "object",
    "description": "Every error under /api/ has this shape, whatever the status.",
    "additionalProperties": False,
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status", "title", "message"],
            "properties": {
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "title": {"type": "string", "description": "The HTTP reason phrase."},
                "message": {"type": "string", "description": "What was wrong, for a person."},
            },
        }
    },
}


@dataclass(frozen=True, slots=True)
class Param:
    """A query or path parameter."""

    name: str
    schema: JsonSchema
    description: str
    where: Literal["query", "path"] = "query"
    required: bool = False

    def spec(self) -> JsonSchema:
        return {
            "name": self.name,
            "in": self.where,
            "required": self.required or self.where == "path",
            "description": self.description,
            "schema": self.schema,
        }


@dataclass(frozen=True, slots=True)
class Operation:
    """One endpoint: what it takes, what it answers, and which errors it can give."""

    method: Literal["GET", "POST"]
    path: str  # the full path, with {name} for path parameters
    operation_id: str
    summary: str
    description: str
    response: JsonSchema  # of the 200 answer
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()  # 401 is implied by `secured`
    body: JsonSchema | None = None  # a JSON request body, when the operation takes one
    body_required: bool = False
    secured: bool = True

    @property
    def query_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params if p.where == "query")

    @property
    def statuses(self) -> tuple[int, ...]:
        extra = (401,) if self.secured else ()
        return (200, *sorted({*self.errors, *extra}))

    def spec(self) -> JsonSchema:
        responses: dict[str, Any] = {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": self.response}},
            }
        }
        for status in self.statuses[1:]:
            responses[str(status)] = {"$ref": f"#/components/responses/E{status}"}
        out: JsonSchema = {
            "operationId": self.operation_id,
            "summary": self.summary,
            "description": self.description,
            "parameters": [p.spec() for p in self.params],
            "responses": responses,
            "security": [{SECURITY_SCHEME: []}] if self.secured else [],
        }
        if self.body is not None:
            out["requestBody"] = {
                "required": self.body_required,
                "content": {"application/json": {"schema": self.body}},
            }
        return out


def _error_response(status: int) -> JsonSchema:
    response: JsonSchema = {
        "description": ERRORS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
        }
    if status == 503:
        response["headers"] = {"Retry-After": {"required": True, "schema": {"type": "string"}}}
    return response


def document(
    operations: Sequence[Operation],
    schemas: Mapping[str, JsonSchema],
    *,
    title: str,
    version: str,
    description: str,
) -> JsonSchema:
    """The OpenAPI document of `operations`, with `schemas` as its named components."""
    paths: dict[str, dict[str, Any]] = {}
    used: set[int] = set()
    for operation in operations:
        methods = paths.setdefault(operation.path, {})
        key = operation.method.lower()
        if key in methods:
            raise ValueError(f"{operation.method} {operation.path} is declared twice")
        methods[key] = operation.spec()
        used.update(operation.statuses[1:])
    unknown = used - set(ERRORS)
    if unknown:
        raise ValueError(f"undocumented error statuses {sorted(unknown)}")
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA, **schemas},
            "responses": {f"E{status}": _error_response(status) for status in sorted(used)},
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token made on the portal's account page "
                    "(lw_...), sent as `Authorization: Bearer lw_...`. Cookies are not "
                    "accepted.",
                }
            },
        },
    }
