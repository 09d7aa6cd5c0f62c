"""How the API reads a request: its query (only the parameters its operation declares),
paging cursors, time ranges and JSON bodies.

Each parameter is checked against the pattern the OpenAPI document states for it
(`portal.api.patterns`), so the document promises exactly what is accepted: a value its
schema refuses is a 400, and a value it allows is read. Only what a schema cannot say is
decided here beyond the patterns, and the document says it in words: a week 53 in a year
of 52 weeks names no window (404, as an unknown customer does), an empty or reversed time
range holds nothing, and a series may not be longer than its bucket allows.

Every problem is a 4xx whose message names the parameter, the value given and what is
allowed; nothing here may raise anything else for any input, read the database, or
decide who may see what (that is `portal.scope`).

Cursors are opaque to clients: the sort key of the last item sent, bound to the
operation, its path and its filters, and signed, so a cursor that was altered, made up,
or carried over to another query is a 400 rather than a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web

from kernel.durations import parse_duration
from kernel.formatting import count_of
from portal.api.openapi import Operation
from portal.api.patterns import (
    CURSOR_MAX_CHARS,
    CURSOR_PATTERN,
    DATE_PATTERN,
    DATE_TIME_PATTERN,
    DURATION_MAX_CHARS,
    DURATION_PATTERN,
    ID_PATTERN,
    WHITE_SPACE,
    WINDOW_PATTERN,
    YEARS,
)
from portal.middleware import PortalError, bad_request
from portal.params import choice
from portal.settings import PortalSettings
from sla.windows import parse_window

T = TypeVar("T")
Key = tuple[str | int, ...]  # an item's place in its list's order

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
_PAGING = frozenset({"limit", "cursor"})
# The document's patterns, matched whole: `fullmatch`, since Python's `$` would also
# allow a trailing newline, which ECMA-262's does not.
_DATE = re.compile(DATE_PATTERN)
_DATE_TIME = re.compile(DATE_TIME_PATTERN)
_NO_OFFSET = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?")
_WINDOW = re.compile(WINDOW_PATTERN)
_DURATION = re.compile(DURATION_PATTERN)
_CURSOR = re.compile(CURSOR_PATTERN)
_ID = re.compile(ID_PATTERN)
_UTC_ZONE = ZoneInfo("UTC")


# --- the query ---------------------------------------------------------------------------


def check_query(request: web.Request, operation: Operation) -> None:
    """Refuse parameters the operation does not take (a misspelt filter must not quietly
    return everything), parameters given twice, and empty ones (`limit=` is a mistake,
    not a request for the default)."""
    allowed = operation.query_names
    for name, value in request.query.items():
        if name not in allowed:
            takes = ", ".join(sorted(allowed)) or "no query parameters"
            raise bad_request(f"unknown query parameter {name!r}; this endpoint takes {takes}")
        if len(request.query.getall(name)) > 1:
            raise bad_request(f"give {name} once")
        if value == "":
            raise bad_request(f"{name} is empty; give it a value or leave it out")


def one_of(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    """An optional parameter with a fixed set of values; absent means no filter."""
    if name not in request.query:
        return None
    return choice(request.query, name, allowed, "")


def limit(request: web.Request) -> int:
    text = request.query.get("limit", "")
    if text == "":
        return DEFAULT_LIMIT
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses.
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise bad_request(
            f"limit={text!r} is not allowed; use a whole number from 1 to {MAX_LIMIT}"
        )
    return int(text)


def ident(request: web.Request, name: str) -> str | None:
    """An id filter (customer, link), if given. One the config could not hold is a 400:
    no customer has it, so saying so tells nobody anything."""
    text = request.query.get(name)
    if text is not None and not _ID.fullmatch(text):
        raise bad_request(
            f"{name}={_shorten(text)!r} is not an id; ids are 1 to 63 lower-case letters, "
            "digits, '.', '_' or '-', starting with a letter or digit"
        )
    return text


def time_range(
    request: web.Request,
    now: datetime,
    *,
    before: timedelta,
    after: timedelta = timedelta(0),
    longest: timedelta | None = None,
    longest_note: str = "",
    span_param: bool = False,
) -> tuple[datetime, datetime]:
    """[from, to) from the query: `to` defaults to `now + after`, `from` to `before`
    earlier than `to` (or to `to - range`, where the operation takes `range`).

    A range that is empty or reversed comes back as it is, and holds nothing: a client
    reading on from its last `to` may well ask for an empty one. `longest` bounds the
    span of an answer that is not paged (a series); `longest_note` says what else
    allows more. A paged list needs no bound: it costs a page at a time."""
    query = request.query
    start = moment(query.get("from"), "from")
    end = moment(query.get("to"), "to")
    span = None
    if span_param:
        span = duration(query.get("range"), "range", longest=longest, note=longest_note)
    if span is not None and start is not None:
        raise bad_request(
            f"give from or range, not both: range={query['range']!r} counts back from to"
        )
    end = end if end is not None else now + after
    start = start if start is not None else end - (span or before)
    if longest is not None and end - start > longest:
        raise bad_request(
            f"from={start.isoformat()} to to={end.isoformat()} is longer than allowed; "
            f"ask for at most {_days(longest)} at a time{longest_note}"
        )
    return start, end


def moment(text: str | None, name: str) -> datetime | None:
    """An RFC 3339 time with its offset, or a date (its midnight UTC): what the document
    promises, no looser (Python's ISO parser also takes forms such as 20261124)."""
    if text is None:
        return None
    if _DATE.fullmatch(text) or _DATE_TIME.fullmatch(text):
        try:
            value = datetime.fromisoformat(text.upper())
        except ValueError:  # the pattern allows 31 days in every month
            raise bad_request(f"{name}={text!r} is not a time: there is no such day") from None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if _NO_OFFSET.fullmatch(text):
        raise bad_request(f"{name}={text!r} has no UTC offset; add one, e.g. Z or +01:00")
    raise bad_request(
        f"{name}={text!r} is not a time; use RFC 3339 such as 2026-11-24T08:00:00Z, "
        f"or a date such as 2026-11-24, in the years {YEARS}"
    )


def duration(
    text: str | None, name: str, *, longest: timedelta | None, note: str = ""
) -> timedelta | None:
    """A positive duration such as 6h, 7d or 1h30m, at most `longest`."""
    if text is None:
        return None
    if len(text) > DURATION_MAX_CHARS or not _DURATION.fullmatch(text):
        raise bad_request(
            f"{name}={text!r} is not a duration; use a number with a unit ms, s, m, h, d "
            "or w (at most three decimals), more than zero, such as 6h, 7d or 1h30m"
        )
    try:
        value = parse_duration(text)
    except ValueError:  # its form is right, so it can only be longer than 100 years
        value = timedelta.max
    if longest is not None and value > longest:
        raise bad_request(f"{name}={text!r} is longer than allowed: at most {_days(longest)}{note}")
    return value


def required_window_label(request: web.Request) -> str:
    label = window_label(request)
    if label is None:
        raise bad_request(
            "window is required: an ISO week such as 2026-W47, a month such as 2026-11, a "
            "quarter such as 2026-Q3 or a year such as 2026"
        )
    return label


def window_label(request: web.Request) -> str | None:
    """The `window` label, if given: an ISO week, a month, a quarter or a year in the
    document's pattern. A
    week 53 in a year of 52 weeks fits the pattern but names no window: 404, as any name
    of something that does not exist, with the year's last week."""
    text = request.query.get("window")
    if text is None:
        return None
    if not _WINDOW.fullmatch(text):
        raise bad_request(
            f"window={text!r} is not a window; use an ISO week such as 2026-W47 (W01 to "
            f"W53), a month such as 2026-11 (01 to 12), a quarter such as 2026-Q3 (Q1 to "
            f"Q4) or a year such as 2026, in the years {YEARS}"
        )
    try:
        parse_window(text, _UTC_ZONE)
    except ValueError:
        year = text[:4]
        raise PortalError(
            404,
            f"window={text!r}: {year} has 52 ISO weeks, so there is no such window; its "
            f"last week is {year}-W52",
        ) from None
    return text


def _days(span: timedelta) -> str:
    if span.days:
        return count_of(span.days, "day")
    hours = span.total_seconds() / 3600
    return f"{hours:g} {'hour' if hours == 1 else 'hours'}"


# --- pages -------------------------------------------------------------------------------


class Cursors:
    """Makes and reads the signed cursors of one portal (or of every portal process that
    shares its secret key)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def for_settings(cls, settings: PortalSettings) -> Cursors:
        if settings.secret_key:
            secret = settings.secret_key.encode()
            # A key of its own, so a cursor can never pass for a sign-in form token.
            return cls(hmac.new(secret, b"linkwatch api cursor", hashlib.sha256).digest())
        return cls(secrets.token_bytes(32))

    def make(self, query: str, key: Key) -> str:
        payload = _b64(json.dumps({"q": query, "k": list(key)}, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def read(self, query: str, cursor: str) -> list[Any]:
        """The key in `cursor`; 400 for anything but a cursor this query was given."""
        problem = bad_request(
            f"cursor={_shorten(cursor)!r} is not valid here; pass the next_cursor of the "
            "previous page unchanged, with the same filters, or leave cursor out to start "
            "from the first page"
        )
        if len(cursor) > CURSOR_MAX_CHARS or not _CURSOR.fullmatch(cursor):
            raise problem
        payload, signature = cursor.split(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise problem
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, binascii.Error):
            raise problem from None
        if not isinstance(data, dict) or data.get("q") != query:
            raise problem
        key = data.get("k")
        if not isinstance(key, list) or not all(isinstance(v, str | int) for v in key):
            raise problem
        return key

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:18])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def query_identity(request: web.Request, operation: Operation) -> str:
    """What a cursor belongs to: the operation, its path and its filters (not the page
    size, which may change from page to page)."""
    parts = [operation.operation_id, request.path]
    parts += sorted(f"{k}={v}" for k, v in request.query.items() if k not in _PAGING)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def paginate(
    request: web.Request,
    operation: Operation,
    cursors: Cursors,
    items: Sequence[T],
    key: Callable[[T], Key],
    *,
    descending: bool = False,
) -> tuple[list[T], str | None]:
    """One page of `items`, which are sorted by `key` (a unique key: no two items share
    it), and the cursor of the next page. Keyset paging: an item added or removed between
    two requests never makes another one appear twice or go missing."""
    size = limit(request)
    identity = query_identity(request, operation)
    text = request.query.get("cursor", "")
    rest: Sequence[T] = items
    if text:
        after = tuple(cursors.read(identity, text))
        try:
            rest = [i for i in items if (key(i) < after if descending else key(i) > after)]
        except TypeError:  # a key of another shape: a cursor of an older version
            raise _stale(text) from None
    chosen = list(rest[:size])
    more = len(rest) > size
    return chosen, cursors.make(identity, key(chosen[-1])) if more and chosen else None


def _stale(text: str) -> PortalError:
    return bad_request(
        f"cursor={_shorten(text)!r} is no longer valid; leave cursor out to start again"
    )


# --- bodies ------------------------------------------------------------------------------


async def json_object(request: web.Request, *, fields: Sequence[str]) -> dict[str, Any]:
    """The request's JSON object body ({} when there is none), with only `fields`."""
    if not request.body_exists:
        return {}
    if request.content_type != "application/json":
        raise PortalError(
            415,
            f"the body is {request.content_type or 'untyped'}; send it as application/json",
        )
    if (request.charset or "utf-8").lower() != "utf-8":
        raise PortalError(415, f"charset={request.charset} is not accepted; send UTF-8 JSON")
    raw = await request.read()  # past the app's client_max_size: 413
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_request("the body is not UTF-8") from None
    except ValueError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise bad_request("the body is nested too deeply") from None
    if not isinstance(value, dict):
        raise bad_request(f"the body must be a JSON object, not {type(value).__name__}")
    for name in value:
        if name not in fields:
            allowed = ", ".join(fields) or "none"
            raise bad_request(f"unknown field {name!r} in the body; allowed: {allowed}")
    return value


def text_field(body: dict[str, Any], name: str, *, most: int) -> str:
    """A person's text from the body, as `patterns.PERSON_TEXT_PATTERN` describes it."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip(WHITE_SPACE):
        raise bad_request(f"{name} is required: a string that is not only white space")
    if "\x00" in value:
        # PostgreSQL's text cannot hold it: refused here, not a database error later.
        raise bad_request(f"{name} contains a NUL character (\\u0000); send it without")
    if len(value) > most:
        raise bad_request(f"{name} has {len(value)} characters; at most {most} are allowed")
    return value.strip(WHITE_SPACE)
