"""Typed keys for what the portal keeps on its application and on each request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import jinja2
from aiohttp import web

from portal.auth import LoginThrottle, LoginTokens, PasswordChecker, SessionStore, Viewer
from portal.directory import Directory
from portal.settings import LinkLike, PortalSettings, StateSource

SETTINGS = web.AppKey("settings", PortalSettings)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
DIRECTORY = web.AppKey("directory", Directory)
PASSWORDS = web.AppKey("passwords", PasswordChecker)
SESSIONS = web.AppKey("sessions", SessionStore)
THROTTLE = web.AppKey("throttle", LoginThrottle)
LOGIN_TOKENS = web.AppKey("login_tokens", LoginTokens)
STATES: web.AppKey[StateSource[LinkLike]] = web.AppKey("states")
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")
# Operational notices for staff (e.g. samples waiting in the disk spool).
NOTICES: web.AppKey[Callable[[], Sequence[str]]] = web.AppKey("notices")

# Set by the session middleware on every request: None when nobody is signed in.
VIEWER: web.RequestKey[Viewer | None] = web.RequestKey("viewer")
