"""Schemathesis hooks for the API's property-based run (tests/test_api.py): what the
OpenAPI document states in words, because a schema cannot, taught to the generator.

A schema cannot say that a value must be one the API made, or state a rule joining two
parameters. The document says both in words, for the page cursor and for a series' span;
these hooks keep the run's *positive* cases (requests the document allows) within those
words, and leave every negative case as generated, so a request the schemas forbid still
has to be refused:

- a `cursor` is one the API returned: a generated one is replaced by the `next_cursor`
  the API gives the same query's first page (limit 1), or left out where there is none;
- a series takes `from` or `range`, not both, and spans at most 31 days of hours or 400
  of days: a longer one is cut to that.

Loaded by schemathesis in its own process (its config's `hooks`); the API's address, the
token of the user the run is pinned to and the portal's fixed clock come from the
environment (`FUZZ_*`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import requests
import schemathesis

from kernel.durations import parse_duration
from portal.api.series import SERIES


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    meta = case.meta
    if meta is not None and not meta.generation.mode.is_positive:
        return
    query = case.query
    if query is None:
        return
    if "cursor" in query:
        _real_cursor(case, query)
    if case.operation.path.endswith("/series"):
        _series_within_bounds(query)


def _real_cursor(case: Any, query: dict[str, Any]) -> None:
    first_page = {**{k: v for k, v in query.items() if k != "cursor"}, "limit": "1"}
    response = requests.get(
        os.environ["FUZZ_BASE_URL"] + case.formatted_path,
        params=first_page,
        headers={"Authorization": f"Bearer {os.environ['FUZZ_TOKEN']}"},
        timeout=10,
    )
    cursor = response.json().get("next_cursor") if response.status_code == 200 else None
    if cursor is None:
        del query["cursor"]
    else:
        query["cursor"] = cursor


def _series_within_bounds(query: dict[str, Any]) -> None:
    bucket = query.get("bucket", "hour")
    if bucket not in SERIES:
        return
    longest = SERIES[bucket][1]
    if "from" in query:
        query.pop("range", None)
        start = _moment(query["from"])
        end = _moment(query["to"]) if "to" in query else _now()
        if end - start > longest:
            query["to"] = (start + longest).isoformat()
    elif "range" in query:
        try:
            too_long = parse_duration(query["range"]) > longest
        except ValueError:  # longer than any duration is allowed to be
            too_long = True
        if too_long:
            query["range"] = f"{longest.days}d"


def _moment(text: str) -> datetime:
    value = datetime.fromisoformat(text.upper())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _now() -> datetime:
    return datetime.fromisoformat(os.environ["FUZZ_NOW"])
