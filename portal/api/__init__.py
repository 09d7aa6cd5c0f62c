"""The JSON API under /api/v1: the pages' data for machines, with the pages' authorisation.

Requests sign in with an API token (``Authorization: Bearer lw_...``), never a cookie.
Errors are JSON of one stable shape, ``{"error": {"status", "title", "message"}}``
(written by `portal.middleware`). Each endpoint is declared once, beside its handler,
with `endpoints.endpoint`; `routes` lists them, routes them and documents them in the
OpenAPI document served at /api/v1/openapi.json, and every request's query is checked
against its declaration.

Who sees what is `portal.scope`'s answer, asked before anything is read: an object
outside the caller's scope is a 404 with the same body as one that does not exist, and
so is an action the caller's role may not take. Nothing in this package may hand a
customer another customer's link, report, credit or maintenance target, put an
exception's text in a response (only `PortalError` messages, written for people), or
answer 5xx for anything a client sends. Handlers read through `PortalReads` (the
ledger's approve and apply write through `sla.ledger`) and never import the pages.

The modules, by job:

- `routes`: every endpoint, in the document's order, added to the app;
- `endpoints`: declaring an operation (token, query check, JSON answer) and paging;
- `access`: whether the caller may see the link or customer a request names;
- `params`: reading a request's query, cursors, time ranges and JSON body;
- `formats`: times, measurements and decimals as answers write them;
- `document`, `openapi`, `schemas`, `patterns`: the OpenAPI document, its parts, the
  schemas of what the API answers and the patterns of what its parameters take;
- the handlers, one module per subject: `user`, `links`, `series`, `reports`,
  `contracts`, `credits`, `maintenance`, `sites`.
"""
