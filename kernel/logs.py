"""Logging set-up: one line per event, ``key=value`` context, UTC timestamps.

Modules log through ``logging.getLogger(__name__)``; this only configures the root
handler once, for the command line. Secrets never reach a log line from here.

A value that came from outside (a user name typed into a form, a request path, a
receiver's answer) goes into a line through `quoted`, so that it can neither end the
line, nor forge a ``key=value``, nor send escape sequences to a terminal. As a second
guard the handler escapes control characters in every string argument of every line,
whichever module logs it; text meant to span lines belongs in the format string or in
an exception. Requests too malformed for aiohttp to parse are logged in one line each,
not with aiohttp's traceback: a traceback per bad request makes flooding the log cheap.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

# A value of only these characters reads unambiguously as it is; anything else is quoted.
_BARE = re.compile(r"[A-Za-z0-9._@:/+\-\[\],~%]+")
_QUOTES = {'"': '\\"', "\\": "\\\\"}


def quoted(value: object, limit: int = 200) -> str:
    """`value` as one token of a log line: as it is when it is a plain word (letters,
    digits and ``._@:/+-[],~%``), else in double quotes with ``"``, ``\\`` and every
    character that is not printable (line breaks, escape sequences, lone surrogates from
    undecodable bytes) escaped as in Python. A value longer than `limit` characters is
    cut, and ``...`` after the closing quote says so."""
    text = str(value)
    cut = len(text) > limit
    text = text[:limit]
    if not cut and _BARE.fullmatch(text):
        return text
    inner = "".join(_QUOTES.get(char) or _escaped(char) for char in text)
    return f'"{inner}"' + ("..." if cut else "")


def _escaped(char: str) -> str:
    if char.isprintable():
        return char
    return char.encode("unicode_escape", "backslashreplace").decode("ascii")


def _tame(text: str) -> str:
    """Characters that are not printable escaped, everything else as it is."""
    return text if text.isprintable() else "".join(map(_escaped, text))


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_tame(a) if isinstance(a, str) else a for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: _tame(v) if isinstance(v, str) else v for k, v in args.items()}
        return super().format(record)


class _OneLineBadRequests(logging.Filter):
    """aiohttp's "Error handling request" for a request it could not parse, which it
    logs at ERROR with a traceback, becomes one INFO line: the client's mistake, not
    ours. Anything else aiohttp's server logs passes as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        remote = args[0] if len(args) == 1 else None
        record.msg = "bad request refused remote=%s status=%d error=%s"
        record.args = (quoted(remote), error.code, quoted(" ".join(error.message.split())))
        record.exc_info, record.exc_text = None, None
        if record.levelno > logging.INFO:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries chatter at INFO about things an operator does not act on.
    for noisy in ("aiohttp.access", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _OneLineBadRequests) for f in server.filters):
        server.addFilter(_OneLineBadRequests())
