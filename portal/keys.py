"""Typed keys for what the portal keeps on its application and on each request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import jinja2
from aiohttp import web

from collector import Database
from portal.auth import Accounts, LoginTokens, Viewer
from portal.cache import Cache
from portal.reads import PortalReads
from portal.scope import LiveConfig
from portal.settings import PortalSettings
from sla.pdf import PdfPrinter

SETTINGS = web.AppKey("settings", PortalSettings)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
DATABASE = web.AppKey("database", Database)
# The config the portal serves from, and its directory; a reload replaces them whole.
LIVE = web.AppKey("live", LiveConfig)
ACCOUNTS = web.AppKey("accounts", Accounts)
LOGIN_TOKENS = web.AppKey("login_tokens", LoginTokens)
CACHE = web.AppKey("cache", Cache)
# Every read of the pages and the API goes through it (see portal.reads).
READS = web.AppKey("reads", PortalReads)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
# Operational notices for staff (e.g. samples waiting in the disk spool).
NOTICES: web.AppKey[Callable[[], Sequence[str]]] = web.AppKey("notices")
# Whether samples can be stored, and the JSON saying so (/healthz, /readyz).
HEALTH: web.AppKey[Callable[[], tuple[bool, bytes]]] = web.AppKey("health")
# Prints the monthly reports' PDFs (headless Chromium, a few at a time).
PRINTER = web.AppKey("printer", PdfPrinter)

# Set by the session middleware on every request: None when nobody is signed in.
VIEWER: web.RequestKey[Viewer | None] = web.RequestKey("viewer")
