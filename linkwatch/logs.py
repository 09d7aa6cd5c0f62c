"""Logging set-up: one line per event, ``key=value`` context, UTC timestamps.

Modules log through ``logging.getLogger(__name__)``; this only configures the root
handler once, for the command line. Secrets never reach a log line from here.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries chatter at INFO about things an operator does not act on.
    for noisy in ("aiohttp.access", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
